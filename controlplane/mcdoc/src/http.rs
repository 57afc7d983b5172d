//! The site's HTTP routes: `/` and every page (`/design/mcp` for
//! `design/mcp.md`, `/design/` for a directory: its README or a listing),
//! assets by their file name, `/_mcdoc/style.css`.
//!
//! Invariants: a request is answered only with what the current tree holds
//! under the requested key (no path is built from the request); GET and
//! HEAD only; every answer carries a CSP without scripts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::site::Site;
use crate::tree::{Kind, Tree, md_stem};

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const STYLE: &str = include_str!("../assets/style.css");

pub(crate) fn router(site: Arc<Site>) -> axum::Router {
    axum::Router::new()
        .route("/", get(root))
        .route("/_mcdoc/style.css", get(style))
        .route("/{*path}", get(path))
        .layer(axum::middleware::map_response(headers))
        .with_state(site)
}

async fn headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn style(State(site): State<Arc<Site>>) -> Response {
    let css = format!("{STYLE}\n{}", site.hl.css());
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

async fn root(State(site): State<Arc<Site>>) -> Response {
    serve(&site, "").await
}

async fn path(State(site): State<Arc<Site>>, Path(p): Path<String>) -> Response {
    serve(&site, &p).await
}

async fn serve(site: &Arc<Site>, request: &str) -> Response {
    let tree = site.tree.load_full();
    let p = request.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        let dir = p.trim_end_matches('/');
        if !tree.dirs.contains_key(dir) {
            return not_found(site, &tree, request);
        }
        return match tree.dir_page(dir) {
            Some((key, _)) => page(site, &tree, key, p).await,
            None => listing(site, &tree, dir),
        };
    }
    let key = md_stem(p).unwrap_or(p);
    match tree.files.get(key).map(|f| f.kind) {
        Some(Kind::Markdown) => page(site, &tree, key, p).await,
        Some(Kind::Asset(content_type)) => asset(site, &tree, key, content_type).await,
        None if tree.dirs.contains_key(p) => Redirect::permanent(&format!("/{p}/")).into_response(),
        None => not_found(site, &tree, request),
    }
}

async fn page(site: &Arc<Site>, tree: &Arc<Tree>, key: &str, current: &str) -> Response {
    let Some(file) = tree.files.get(key).cloned() else {
        return not_found(site, tree, key);
    };
    let s = site.clone();
    let k = key.to_owned();
    let rendered = tokio::task::spawn_blocking(move || s.page(&k, &file)).await;
    match rendered {
        Ok(Ok(p)) => {
            let title = p
                .title
                .clone()
                .unwrap_or_else(|| key.rsplit('/').next().unwrap_or(key).to_owned());
            let html = layout(site, tree, &title, current, PreEscaped(&p.body));
            html_response(StatusCode::OK, html)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read a page");
            not_found(site, tree, key)
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn asset(
    site: &Arc<Site>,
    tree: &Arc<Tree>,
    key: &str,
    content_type: &'static str,
) -> Response {
    let Some(file) = tree.files.get(key).cloned() else {
        return not_found(site, tree, key);
    };
    let root = site.root.clone();
    match tokio::task::spawn_blocking(move || Tree::read(&root, &file)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        _ => not_found(site, tree, key),
    }
}

/// `dir/` (empty for the root), and whether a key is directly in `dir`.
fn children(dir: &str) -> (String, impl Fn(&str) -> bool) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let p = prefix.clone();
    let child = move |key: &str| {
        key.strip_prefix(p.as_str())
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    };
    (prefix, child)
}

fn listing(site: &Site, tree: &Tree, dir: &str) -> Response {
    let (prefix, children) = children(dir);
    let title = if dir.is_empty() {
        site.title.as_str()
    } else {
        dir
    };
    let body = html! {
        h1 { (title) }
        ul {
            @for d in tree.dirs.keys().filter(|d| children(d)) {
                li { a href={ "/" (d) "/" } { (d.rsplit('/').next().unwrap_or(d)) "/" } }
            }
            @for (k, f) in tree.files.iter().filter(|(k, _)| children(k)) {
                li { a href={ "/" (k) } { (f.rel.rsplit('/').next().unwrap_or(&f.rel)) } }
            }
        }
    };
    html_response(StatusCode::OK, layout(site, tree, title, &prefix, body))
}

fn not_found(site: &Site, tree: &Tree, what: &str) -> Response {
    let body = html! { h1 { "Not found" } p { "No page is named " code { (what) } "." } };
    html_response(
        StatusCode::NOT_FOUND,
        layout(site, tree, "Not found", "", body),
    )
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn layout(site: &Site, tree: &Tree, title: &str, current: &str, body: impl maud::Render) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site.title) }
                link rel="stylesheet" href="/_mcdoc/style.css";
            }
            body {
                header { a href="/" { (site.title) } }
                div.layout {
                    nav { (nav(tree, "", current)) }
                    main { (body) }
                }
            }
        }
    }
}

/// The tree as nested lists: directories (linked to their page) first,
/// then pages, each level sorted by name.
fn nav(tree: &Tree, dir: &str, current: &str) -> Markup {
    let (_, child) = children(dir);
    let current = current.trim_end_matches(".md");
    html! {
        ul {
            @for d in tree.dirs.keys().filter(|d| child(d)) {
                li {
                    a.dir href={ "/" (d) "/" } { (d.rsplit('/').next().unwrap_or(d)) "/" }
                    (nav(tree, d, current))
                }
            }
            @for k in tree.files.iter().filter(|(k, f)| child(k) && f.kind == Kind::Markdown).map(|(k, _)| k) {
                @let name = k.rsplit('/').next().unwrap_or(k);
                @let here = k == current || tree.dir_page(current.trim_end_matches('/')).is_some_and(|(p, _)| p == k && (current.is_empty() || current.ends_with('/')));
                li { a href={ "/" (k) } class=[here.then_some("current")] { (name) } }
            }
        }
    }
}

#[cfg(test)]
mod tests;
