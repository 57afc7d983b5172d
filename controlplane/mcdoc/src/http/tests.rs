use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

fn site(files: &[(&str, &str)]) -> (tempfile::TempDir, Arc<Site>) {
    let d = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let s = Site::open(d.path().to_owned(), "Test <docs>".into()).unwrap();
    (d, Arc::new(s))
}

async fn get(site: &Arc<Site>, uri: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let req = axum::http::Request::get(uri).body(Body::empty()).unwrap();
    let r = router(site.clone()).oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        String::from_utf8_lossy(&bytes).into_owned(),
        parts.headers,
    )
}

#[tokio::test]
async fn pages_dirs_assets_and_refusals() {
    let (_d, s) = site(&[
        ("README.md", "# Home\n\nSee [MCP](design/mcp.md#deploy)."),
        ("design/mcp.md", "# MCP\n\n## Deploy\n"),
        ("design/img/a.png", "PNG"),
        ("guide/README.md", "# Guide\n\n[up](../README.md)"),
        ("secret.key", "not served"),
    ]);
    let (code, body, h) = get(&s, "/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.contains("<title>Home · Test &lt;docs&gt;</title>"),
        "{body}"
    );
    assert!(body.contains("href=\"design/mcp#deploy\""), "{body}");
    assert!(body.contains("href=\"/design/mcp\""), "the nav: {body}");
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let (code, body, _) = get(&s, "/design/mcp").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("<h2 id=\"deploy\">Deploy</h2>"), "{body}");
    assert_eq!(get(&s, "/design/mcp.md").await.0, StatusCode::OK);
    let (code, body, _) = get(&s, "/design/").await;
    assert_eq!(code, StatusCode::OK, "a listing: {body}");
    assert!(
        body.contains("href=\"/design/img/\"") && body.contains("href=\"/design/mcp\""),
        "{body}"
    );
    let (code, _, h) = get(&s, "/design").await;
    assert_eq!(code, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(h[header::LOCATION], "/design/");
    let (code, body, _) = get(&s, "/guide/").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.contains("<h1 id=\"guide\">Guide</h1>") && body.contains("href=\"../\""),
        "{body}"
    );
    let (code, body, h) = get(&s, "/design/img/a.png").await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "PNG"));
    assert_eq!(h[header::CONTENT_TYPE], "image/png");
    let (code, css, _) = get(&s, "/_mcdoc/style.css").await;
    assert_eq!(code, StatusCode::OK);
    assert!(css.contains(".hl-"));
    for bad in [
        "/secret.key",
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/design/../../etc/hostname",
        "/..%2f..%2fetc%2fhostname",
        "/nope",
        "/nope/",
        "/.git/config",
        "/%3Cscript%3E",
    ] {
        let (code, body, _) = get(&s, bad).await;
        assert!(
            code == StatusCode::NOT_FOUND || code == StatusCode::BAD_REQUEST,
            "{bad}: {code}"
        );
        assert!(
            !body.contains("root:") && !body.contains("not served") && !body.contains("<script>"),
            "{bad}: {body}"
        );
    }
}
