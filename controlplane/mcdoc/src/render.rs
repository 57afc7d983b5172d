//! Markdown to HTML: GitHub-flavoured (tables, task lists, footnotes,
//! strikethrough, alerts), fenced code highlighted, headings given
//! GitHub-style ids, relative links to `.md` files pointed at their pages.
//!
//! Invariant: the output holds no HTML the source wrote. Raw HTML (blocks
//! and inline) is escaped and shown as text; link and image targets with a
//! scheme other than http, https and mailto become `#`; everything else is
//! escaped by pulldown-cmark's writer or [`crate::highlight`].

use std::borrow::Cow;
use std::collections::HashMap;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::highlight::Highlighter;
use crate::tree::md_stem;

/// A rendered page: its title (the first level-1 heading) and body.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) title: Option<String>,
    pub(crate) body: String,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM
}

/// Renders `source`.
pub(crate) fn render(source: &str, hl: &Highlighter) -> Page {
    let mut out: Vec<Event<'_>> = Vec::new();
    let mut title: Option<String> = None;
    let mut slugs: HashMap<String, usize> = HashMap::new();
    // A heading, a code block or an HTML block being collected.
    let mut heading: Option<(HeadingLevel, Vec<Event<'_>>, String)> = None;
    let mut code: Option<(String, String)> = None;
    let mut html: Option<String> = None;
    for ev in Parser::new_ext(source, options()) {
        if let Some((_, text)) = code.as_mut() {
            match ev {
                Event::Text(t) => text.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    if let Some((lang, text)) = code.take() {
                        out.push(Event::Html(hl.block(&lang, &text).into()));
                    }
                }
                _ => {}
            }
            continue;
        }
        if let Some(raw) = html.as_mut() {
            match ev {
                Event::Html(t) | Event::Text(t) => raw.push_str(&t),
                Event::End(TagEnd::HtmlBlock) => {
                    let raw = html.take().unwrap_or_default();
                    let shown = maud::html! { pre.raw-html { (raw) } }.into_string();
                    out.push(Event::Html(shown.into()));
                }
                _ => {}
            }
            continue;
        }
        let ev = match ev {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
                continue;
            }
            Event::Start(Tag::HtmlBlock) => {
                html = Some(String::new());
                continue;
            }
            Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: CowStr::from(rewrite_link(&dest_url).into_owned()),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: CowStr::from(safe_target(&dest_url).into_owned()),
                title,
                id,
            }),
            other => other,
        };
        match (ev, heading.as_mut()) {
            (Event::Start(Tag::Heading { level, .. }), None) => {
                heading = Some((level, Vec::new(), String::new()));
            }
            (Event::End(TagEnd::Heading(_)), Some(_)) => {
                if let Some((level, inner, text)) = heading.take() {
                    if level == HeadingLevel::H1 && title.is_none() {
                        title = Some(text.clone());
                    }
                    let id = unique(&mut slugs, slug(&text));
                    out.push(Event::Start(Tag::Heading {
                        level,
                        id: Some(id.into()),
                        classes: Vec::new(),
                        attrs: Vec::new(),
                    }));
                    out.extend(inner);
                    out.push(Event::End(TagEnd::Heading(level)));
                }
            }
            (ev, Some((_, inner, text))) => {
                if let Event::Text(t) | Event::Code(t) = &ev {
                    text.push_str(t);
                }
                inner.push(ev);
            }
            (ev, None) => out.push(ev),
        }
    }
    let mut body = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut body, out.into_iter());
    Page { title, body }
}

/// GitHub's heading ids: lower case, letters, digits, `-` and `_` kept,
/// spaces to `-`, the rest dropped.
pub(crate) fn slug(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn unique(seen: &mut HashMap<String, usize>, slug: String) -> String {
    let n = seen.entry(slug.clone()).or_insert(0);
    let id = if *n == 0 { slug } else { format!("{slug}-{n}") };
    *n += 1;
    id
}

/// The scheme of `dest` (`https` in `https://…`), if it has one.
fn scheme(dest: &str) -> Option<&str> {
    let end = dest.find([':', '/', '?', '#'])?;
    (dest.as_bytes().get(end) == Some(&b':')).then(|| dest.get(..end).unwrap_or_default())
}

/// `dest` if its scheme is http, https or mailto or it has none; else `#`.
pub(crate) fn safe_target(dest: &str) -> Cow<'_, str> {
    let trimmed = dest.trim_start();
    match scheme(trimmed) {
        None => Cow::Borrowed(dest),
        Some(s)
            if ["http", "https", "mailto"]
                .iter()
                .any(|k| s.eq_ignore_ascii_case(k)) =>
        {
            Cow::Borrowed(dest)
        }
        Some(_) => Cow::Borrowed("#"),
    }
}

/// A link as the site serves it: a relative or absolute path to a `.md`
/// file loses the extension (`design/mcp.md#x` → `design/mcp#x`), and a
/// `README.md`/`index.md` becomes its directory (`design/README.md` →
/// `design/`); other targets are only made safe ([`safe_target`]).
pub(crate) fn rewrite_link(dest: &str) -> Cow<'_, str> {
    if dest.starts_with('#') || dest.starts_with("//") || scheme(dest.trim_start()).is_some() {
        return safe_target(dest);
    }
    let cut = dest.find(['?', '#']).unwrap_or(dest.len());
    let (path, rest) = dest.split_at(cut);
    let Some(stem) = md_stem(path) else {
        return Cow::Borrowed(dest);
    };
    let (dir, name) = match stem.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, stem),
    };
    let page = if ["readme", "index"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        match dir {
            Some(d) => format!("{d}/"),
            None => "./".to_owned(),
        }
    } else {
        stem.to_owned()
    };
    Cow::Owned(format!("{page}{rest}"))
}

#[cfg(test)]
mod tests;
