//! Code highlighting: syntect's default grammars, output as `<span>`s with
//! `hl-` classes, and one stylesheet made from a default theme for those
//! classes (no script, no inline styles, so the site's CSP can forbid both).
//!
//! Invariant: every byte of the code reaches the page escaped, highlighted
//! or not; a block over [`MAX_HIGHLIGHT`] or in an unknown language is
//! escaped only.

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };
const THEME: &str = "InspiredGitHub";
/// Longer code blocks are shown without colours (bounded work per page).
pub(crate) const MAX_HIGHLIGHT: usize = 256 * 1024;

pub(crate) struct Highlighter {
    syntaxes: SyntaxSet,
    css: String,
}

impl Highlighter {
    pub(crate) fn new() -> Self {
        let themes = ThemeSet::load_defaults();
        let css = themes
            .themes
            .get(THEME)
            .and_then(|t| css_for_theme_with_class_style(t, STYLE).ok())
            .unwrap_or_default();
        Self {
            syntaxes: SyntaxSet::load_defaults_newlines(),
            css,
        }
    }

    /// The stylesheet for the `hl-` classes.
    pub(crate) fn css(&self) -> &str {
        &self.css
    }

    /// `code` as a `<pre><code>` block, highlighted when `lang` (a fenced
    /// block's info string, first word) names a known grammar.
    pub(crate) fn block(&self, lang: &str, code: &str) -> String {
        let lang = lang.split([' ', ',', '{']).next().unwrap_or_default();
        let inner = self
            .highlighted(lang, code)
            .unwrap_or_else(|| maud::html! { (code) }.into_string());
        let class = if lang.is_empty() {
            String::new()
        } else {
            format!(
                " class=\"language-{}\"",
                maud::html! { (lang) }.into_string()
            )
        };
        format!("<pre class=\"code\"><code{class}>{inner}</code></pre>\n")
    }

    fn highlighted(&self, lang: &str, code: &str) -> Option<String> {
        if lang.is_empty() || code.len() > MAX_HIGHLIGHT {
            return None;
        }
        let syntax = self.syntaxes.find_syntax_by_token(lang)?;
        let mut g = ClassedHTMLGenerator::new_with_class_style(syntax, &self.syntaxes, STYLE);
        for line in LinesWithEndings::from(code) {
            g.parse_html_for_line_which_includes_newline(line).ok()?;
        }
        Some(g.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_get_classes_and_everything_is_escaped() {
        let h = Highlighter::new();
        assert!(h.css().contains(".hl-"), "a stylesheet for the classes");
        let out = h.block("rust", "fn main() { let s = \"<b>\"; }\n");
        assert!(out.contains("class=\"language-rust\""), "{out}");
        assert!(out.contains("<span class=\"hl-"), "{out}");
        assert!(out.contains("&lt;b&gt;") && !out.contains("<b>"), "{out}");
        let out = h.block("no-such-language", "<script>x</script>");
        assert!(
            out.contains("&lt;script&gt;") && !out.contains("<span"),
            "{out}"
        );
        let out = h.block("\"><script>", "x");
        assert!(!out.contains("<script>"), "{out}");
    }
}
