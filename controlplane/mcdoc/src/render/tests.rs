use proptest::prelude::*;

use super::*;

fn hl() -> &'static Highlighter {
    static H: std::sync::OnceLock<Highlighter> = std::sync::OnceLock::new();
    H.get_or_init(Highlighter::new)
}

#[test]
fn gfm_tables_task_lists_footnotes_and_strikethrough_render() {
    let md = "# Title *here*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\n\
              A note[^1] and ~~gone~~.\n\n[^1]: The footnote.\n";
    let p = render(md, hl());
    assert_eq!(p.title.as_deref(), Some("Title here"));
    assert!(p.body.contains("<h1 id=\"title-here\">"), "{}", p.body);
    assert!(
        p.body.contains("<table>") && p.body.contains("<td>1</td>"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("type=\"checkbox\"") && p.body.contains("checked"),
        "{}",
        p.body
    );
    assert!(p.body.contains("footnote-definition"), "{}", p.body);
    assert!(p.body.contains("<del>gone</del>"), "{}", p.body);
}

#[test]
fn raw_html_is_escaped_and_unsafe_targets_dropped() {
    let md = "<script>alert(1)</script>\n\nText <b onclick=x>bold</b>.\n\n\
              [x](javascript:alert(1)) [y](JaVaScRiPt:alert(1)) ![i](data:text/html,x) [ok](https://a.test/)\n";
    let p = render(md, hl());
    assert!(!p.body.contains("<script"), "{}", p.body);
    assert!(!p.body.contains("<b "), "{}", p.body);
    assert!(
        p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        p.body
    );
    assert!(p.body.contains("&lt;b onclick=x&gt;"), "{}", p.body);
    assert!(
        !p.body.to_ascii_lowercase().contains("javascript:"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("data:"), "{}", p.body);
    assert!(p.body.contains("href=\"https://a.test/\""), "{}", p.body);
}

#[test]
fn code_blocks_are_highlighted_and_headings_get_unique_ids() {
    let md = "## Same\n\n## Same\n\n```rust\nlet x = 1;\n```\n\n    indented <x>\n";
    let p = render(md, hl());
    assert!(
        p.body.contains("id=\"same\"") && p.body.contains("id=\"same-1\""),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("language-rust") && p.body.contains("hl-"),
        "{}",
        p.body
    );
    assert!(p.body.contains("indented &lt;x&gt;"), "{}", p.body);
    assert_eq!(p.title, None);
}

#[test]
fn links_to_markdown_files_point_at_their_pages() {
    for (from, to) in [
        ("design/mcp.md", "design/mcp"),
        ("design/mcp.md#deploy", "design/mcp#deploy"),
        ("../README.md", "../"),
        ("README.md", "./"),
        ("design/README.md?x=1", "design/?x=1"),
        ("/ops.MD", "/ops"),
        ("#local", "#local"),
        ("https://example.net/a.md", "https://example.net/a.md"),
        ("img/a.png", "img/a.png"),
        ("javascript:alert(1)", "#"),
        ("vbscript:x.md", "#"),
    ] {
        assert_eq!(rewrite_link(from), to, "{from}");
    }
    let p = render("[MCP](design/mcp.md#deploy)", hl());
    assert!(p.body.contains("href=\"design/mcp#deploy\""), "{}", p.body);
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(slug("Deploy (`deploy.rs`)"), "deploy-deployrs");
    assert_eq!(
        slug("The data plane behind the control plane"),
        "the-data-plane-behind-the-control-plane"
    );
    assert_eq!(slug("Über_x-y"), "über_x-y");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the source, no tag it wrote reaches the page: every `<`
    /// in the output opens a tag this renderer emits.
    #[test]
    fn any_source_yields_only_the_renderers_tags(src in "(\\PC|[<>\"'`\\[\\]()!#*\\n -]){0,200}") {
        let p = render(&src, hl());
        let allowed = [
            "p", "/p", "h1", "/h1", "h2", "/h2", "h3", "/h3", "h4", "/h4", "h5", "/h5", "h6", "/h6",
            "a", "/a", "img", "em", "/em", "strong", "/strong", "code", "/code", "pre", "/pre",
            "ul", "/ul", "ol", "/ol", "li", "/li", "blockquote", "/blockquote", "hr", "br",
            "table", "/table", "thead", "/thead", "tbody", "/tbody", "tr", "/tr", "th", "/th",
            "td", "/td", "del", "/del", "input", "sup", "/sup", "div", "/div", "span", "/span",
            "section", "/section",
        ];
        for tag in p.body.split('<').skip(1) {
            let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect();
            prop_assert!(allowed.contains(&name.as_str()), "tag <{}> in {:?} from {:?}", name, p.body, src);
        }
    }
}
