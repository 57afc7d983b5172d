//! The `/v2` API with raw requests: chunked uploads and 416, Range, sha512,
//! mounts, manifests of the four types, tags pagination, referrers, deletes,
//! the spec's error codes, token auth and scopes, and kill -9 mid-push.

use super::{Registry, Response, sha256, sha512};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Monolithic upload of `bytes` to `repo`; returns the digest.
pub(super) fn push_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let r = reg.raw(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        Some(&reg.admin),
        &["content-type: application/octet-stream"],
        Some(bytes),
    );
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    d
}

fn put_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &serde_json::Value,
) -> Response {
    let bytes = serde_json::to_vec(body).expect("json");
    reg.raw(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        Some(&reg.admin),
        &[&format!("content-type: {media_type}")],
        Some(&bytes),
    )
}

fn image(media_type: &str, config: &str, layer: &str, layer_size: usize) -> serde_json::Value {
    let (cfg_type, layer_type) = if media_type == OCI_MANIFEST {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        )
    } else {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    serde_json::json!({"schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": cfg_type, "digest": config, "size": 2},
        "layers": [{"mediaType": layer_type, "digest": layer, "size": layer_size}]})
}

#[test]
fn uploads_chunks_ranges_sha512_mounts_and_error_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let t = Some(reg.admin.as_str());

    // A chunked upload.
    let r = reg.raw("POST", "/v2/t/blobs/uploads/", t, &[], None);
    assert_eq!(r.code, 202);
    assert_eq!(r.header("range"), Some("0-0"));
    assert!(r.header("docker-upload-uuid").is_some());
    let loc = r.header("location").expect("location").to_owned();
    assert!(
        loc.starts_with("/v2/t/blobs/uploads/") && loc.contains("?_state="),
        "{loc}"
    );
    let r = reg.raw("PATCH", &loc, t, &["content-range: 0-4"], Some(b"hello"));
    assert_eq!((r.code, r.header("range")), (202, Some("0-4")));
    // Out of order: 416 with the current Range, nothing changed.
    let r = reg.raw("PATCH", &loc, t, &["content-range: 10-14"], Some(b"xxxxx"));
    assert_eq!(r.code, 416);
    assert_eq!(r.header("range"), Some("0-4"));
    assert_eq!(r.error_code(), "BLOB_UPLOAD_INVALID");
    let r = reg.raw("PATCH", &loc, t, &["content-range: bytes=5"], Some(b"x"));
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (400, "BLOB_UPLOAD_INVALID")
    );
    let r = reg.raw("PATCH", &loc, t, &["content-range: 5-9"], Some(b"abc"));
    assert_eq!((r.code, r.error_code().as_str()), (400, "SIZE_INVALID"));
    let r = reg.raw("GET", &loc, t, &[], None);
    assert_eq!((r.code, r.header("range")), (204, Some("0-4")));
    // A streamed chunk (no Content-Range), then the closing PUT.
    let r = reg.raw("PATCH", &loc, t, &[], Some(b" world"));
    assert_eq!((r.code, r.header("range")), (202, Some("0-10")));
    let d = sha256(b"hello world");
    let r = reg.raw("PUT", &format!("{loc}&digest={d}"), t, &[], None);
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/t/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        reg.raw("GET", &loc, t, &[], None).error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );

    // Blob reads: HEAD, Range, 416.
    let r = reg.raw("HEAD", &format!("/v2/t/blobs/{d}"), t, &[], None);
    assert_eq!(r.code, 200);
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let r = reg.raw(
        "GET",
        &format!("/v2/t/blobs/{d}"),
        t,
        &["range: bytes=6-"],
        None,
    );
    assert_eq!((r.code, r.body.as_slice()), (206, b"world".as_slice()));
    assert_eq!(r.header("content-range"), Some("bytes 6-10/11"));
    let r = reg.raw(
        "GET",
        &format!("/v2/t/blobs/{d}"),
        t,
        &["range: bytes=20-"],
        None,
    );
    assert_eq!(
        (r.code, r.header("content-range")),
        (416, Some("bytes */11"))
    );
    let r = reg.raw("GET", &format!("/v2/t/blobs/{d}"), t, &[], None);
    assert_eq!(r.body, b"hello world");

    // sha512: a session that hashes sha512, and a monolithic push.
    let r = reg.raw(
        "POST",
        "/v2/t/blobs/uploads/?digest-algorithm=sha512",
        t,
        &[],
        None,
    );
    assert_eq!(r.code, 202);
    let loc = r.header("location").expect("location").to_owned();
    let d512 = sha512(b"five hundred twelve");
    let r = reg.raw(
        "PUT",
        &format!("{loc}&digest={d512}"),
        t,
        &[],
        Some(b"five hundred twelve"),
    );
    assert_eq!(r.code, 201);
    let r = reg.raw("GET", &format!("/v2/t/blobs/{d512}"), t, &[], None);
    assert_eq!(
        (r.code, r.body.as_slice()),
        (200, b"five hundred twelve".as_slice())
    );
    let other = sha512(b"other");
    let r = reg.raw(
        "POST",
        &format!("/v2/t/blobs/uploads/?digest={other}"),
        t,
        &[],
        Some(b"other"),
    );
    assert_eq!(
        (r.code, r.header("docker-content-digest")),
        (201, Some(other.as_str()))
    );
    // A sha256 session closed with a sha512 digest re-reads its data.
    let r = reg.raw("POST", "/v2/t/blobs/uploads/", t, &[], None);
    let loc = r.header("location").expect("location").to_owned();
    let mixed = sha512(b"mixed");
    assert_eq!(
        reg.raw(
            "PUT",
            &format!("{loc}&digest={mixed}"),
            t,
            &[],
            Some(b"mixed")
        )
        .code,
        201
    );
    let r = reg.raw(
        "POST",
        "/v2/t/blobs/uploads/?digest-algorithm=md5",
        t,
        &[],
        None,
    );
    assert_eq!((r.code, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // A wrong digest: 400, the session gone, nothing visible.
    let lie = sha256(b"not this");
    let r = reg.raw(
        "POST",
        &format!("/v2/t/blobs/uploads/?digest={lie}"),
        t,
        &[],
        Some(b"this"),
    );
    assert_eq!((r.code, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    assert_eq!(
        reg.raw("HEAD", &format!("/v2/t/blobs/{lie}"), t, &[], None)
            .code,
        404
    );
    assert_eq!(
        reg.raw(
            "HEAD",
            &format!("/v2/t/blobs/{}", sha256(b"this")),
            t,
            &[],
            None
        )
        .code,
        404
    );

    // Cancel.
    let r = reg.raw("POST", "/v2/t/blobs/uploads/", t, &[], None);
    let loc = r.header("location").expect("location").to_owned();
    assert_eq!(reg.raw("DELETE", &loc, t, &[], None).code, 204);
    let r = reg.raw("DELETE", &loc, t, &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );

    // Cross-repository mount; a digest not in `from` opens a session instead.
    let r = reg.raw(
        "POST",
        &format!("/v2/u/blobs/uploads/?mount={d}&from=t"),
        t,
        &[],
        None,
    );
    assert_eq!(
        (r.code, r.header("location")),
        (201, Some(format!("/v2/u/blobs/{d}").as_str()))
    );
    assert_eq!(
        reg.raw("HEAD", &format!("/v2/u/blobs/{d}"), t, &[], None)
            .code,
        200
    );
    assert_eq!(
        reg.raw("HEAD", &format!("/v2/v/blobs/{d}"), t, &[], None)
            .code,
        404,
        "not linked in v"
    );
    let r = reg.raw(
        "POST",
        &format!("/v2/u/blobs/uploads/?mount={lie}&from=t"),
        t,
        &[],
        None,
    );
    assert_eq!(r.code, 202);

    // Error codes.
    let cases: [(&str, &str, u16, &str); 7] = [
        ("GET", "/v2/t/blobs/sha256:abc", 400, "DIGEST_INVALID"),
        ("GET", &format!("/v2/t/blobs/{lie}"), 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/Bad/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/t/manifests/-bad", 400, "TAG_INVALID"),
        ("GET", "/v2/t/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/nothing/manifests/latest", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/nothing/tags/list", 404, "NAME_UNKNOWN"),
    ];
    for (method, path, code, err) in cases {
        let r = reg.raw(method, path, t, &[], None);
        assert_eq!(
            (r.code, r.error_code().as_str()),
            (code, err),
            "{method} {path}"
        );
        assert!(r.json()["errors"][0]["message"].is_string(), "{path}");
    }
    let missing = image(OCI_MANIFEST, &sha256(b"{}"), &lie, 4);
    let r = put_manifest(&reg, "t", "x", OCI_MANIFEST, &missing);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let r = reg.raw(
        "PUT",
        "/v2/t/manifests/x",
        t,
        &[&format!("content-type: {OCI_MANIFEST}")],
        Some(b"{nope"),
    );
    assert_eq!((r.code, r.error_code().as_str()), (400, "MANIFEST_INVALID"));
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = reg.raw(
        "PUT",
        "/v2/t/manifests/x",
        t,
        &[&format!("content-type: {OCI_MANIFEST}")],
        Some(&big),
    );
    assert_eq!((r.code, r.error_code().as_str()), (413, "SIZE_INVALID"));
}

#[test]
fn manifests_tags_referrers_deletes_and_token_scopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let t = Some(reg.admin.as_str());
    let cfg = push_blob(&reg, "m", b"{}");
    let layer = push_blob(&reg, "m", b"layer");

    // OCI manifest by tag: stored and served exactly, with its type.
    let oci = image(OCI_MANIFEST, &cfg, &layer, 5);
    let oci_bytes = serde_json::to_vec(&oci).expect("json");
    let r = put_manifest(&reg, "m", "v1", OCI_MANIFEST, &oci);
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    let md = sha256(&oci_bytes);
    assert_eq!(r.header("docker-content-digest"), Some(md.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/m/manifests/{md}").as_str())
    );
    let r = reg.raw("GET", "/v2/m/manifests/v1", t, &[], None);
    assert_eq!(
        (r.code, r.header("content-type")),
        (200, Some(OCI_MANIFEST))
    );
    assert_eq!(r.body, oci_bytes);
    let r = reg.raw("HEAD", &format!("/v2/m/manifests/{md}"), t, &[], None);
    assert_eq!(r.code, 200);
    assert_eq!(
        r.header("content-length"),
        Some(oci_bytes.len().to_string().as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(md.as_str()));

    // Docker schema 2, by sha512 digest; ?tag= answers OCI-Tag.
    let docker = image(DOCKER_MANIFEST, &cfg, &layer, 5);
    let docker_bytes = serde_json::to_vec(&docker).expect("json");
    let dd = sha512(&docker_bytes);
    let r = put_manifest(
        &reg,
        "m",
        &format!("{dd}?tag=d1&tag=d2"),
        DOCKER_MANIFEST,
        &docker,
    );
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.all("oci-tag"), vec!["d1", "d2"]);
    let r = reg.raw("GET", "/v2/m/manifests/d2", t, &[], None);
    assert_eq!(
        (r.header("content-type"), r.header("docker-content-digest")),
        (Some(DOCKER_MANIFEST), Some(dd.as_str()))
    );
    let r = put_manifest(&reg, "m", &sha256(b"other"), DOCKER_MANIFEST, &docker);
    assert_eq!((r.code, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // An OCI index and a Docker manifest list over them.
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": md, "size": oci_bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}}]});
    let r = put_manifest(&reg, "m", "multi", OCI_INDEX, &index);
    assert_eq!(r.code, 201);
    let list = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": dd, "size": docker_bytes.len(), "platform": {"os": "linux", "architecture": "arm64"}}]});
    assert_eq!(
        put_manifest(&reg, "m", "dlist", DOCKER_LIST, &list).code,
        201
    );
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/dlist", t, &[], None)
            .header("content-type"),
        Some(DOCKER_LIST)
    );
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/multi", t, &[], None)
            .header("content-type"),
        Some(OCI_INDEX)
    );
    let dangling = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(b"nope"), "size": 3}]});
    assert_eq!(
        put_manifest(&reg, "m", "bad", OCI_INDEX, &dangling).error_code(),
        "MANIFEST_BLOB_UNKNOWN"
    );

    // Referrers: an artifact with a subject answers OCI-Subject and is listed.
    let art = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sbom.layer", "digest": layer, "size": 5}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": md, "size": oci_bytes.len()},
        "annotations": {"org.example": "yes"}});
    let art_bytes = serde_json::to_vec(&art).expect("json");
    let ad = sha256(&art_bytes);
    let r = put_manifest(&reg, "m", &ad, OCI_MANIFEST, &art);
    assert_eq!((r.code, r.header("oci-subject")), (201, Some(md.as_str())));
    let r = reg.raw("GET", &format!("/v2/m/referrers/{md}"), t, &[], None);
    assert_eq!((r.code, r.header("content-type")), (200, Some(OCI_INDEX)));
    let v = r.json();
    assert_eq!(v["manifests"][0]["digest"], ad);
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    assert_eq!(v["manifests"][0]["annotations"]["org.example"], "yes");
    assert_eq!(v["manifests"][0]["size"], art_bytes.len());
    let r = reg.raw(
        "GET",
        &format!("/v2/m/referrers/{md}?artifactType=application/other"),
        t,
        &[],
        None,
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
    let r = reg.raw(
        "GET",
        &format!("/v2/m/referrers/{md}?artifactType=application/vnd.example.sbom"),
        t,
        &[],
        None,
    );
    assert_eq!(r.json()["manifests"].as_array().map(Vec::len), Some(1));
    let r = reg.raw(
        "GET",
        &format!("/v2/m/referrers/{}", sha256(b"none")),
        t,
        &[],
        None,
    );
    assert_eq!(
        (r.code, r.json()["manifests"].clone()),
        (200, serde_json::json!([])),
        "unknown subject: empty"
    );

    // Tags: byte order, n/last and Link.
    let r = reg.raw("GET", "/v2/m/tags/list?n=2", t, &[], None);
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "m", "tags": ["d1", "d2"]})
    );
    assert_eq!(
        r.header("link"),
        Some("</v2/m/tags/list?n=2&last=d2>; rel=\"next\"")
    );
    let r = reg.raw("GET", "/v2/m/tags/list?n=2&last=d2", t, &[], None);
    assert_eq!(r.json()["tags"], serde_json::json!(["dlist", "multi"]));
    let r = reg.raw("GET", "/v2/m/tags/list?n=2&last=multi", t, &[], None);
    assert_eq!(
        (r.json()["tags"].clone(), r.header("link")),
        (serde_json::json!(["v1"]), None)
    );
    let r = reg.raw("GET", "/v2/_catalog", t, &[], None);
    assert_eq!(r.json()["repositories"], serde_json::json!(["m"]));

    // Deletes: refused while referenced, then in order.
    let r = reg.raw("DELETE", &format!("/v2/m/manifests/{md}"), t, &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (405, "DENIED"),
        "a child of an index"
    );
    let r = reg.raw("DELETE", &format!("/v2/m/blobs/{layer}"), t, &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (405, "DENIED"),
        "a referenced blob"
    );
    assert_eq!(
        reg.raw("DELETE", "/v2/m/manifests/multi", t, &[], None)
            .code,
        202,
        "a tag"
    );
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/multi", t, &[], None).code,
        404
    );
    let idx = sha256(&serde_json::to_vec(&index).expect("json"));
    assert_eq!(
        reg.raw("GET", &format!("/v2/m/manifests/{idx}"), t, &[], None)
            .code,
        200,
        "untagged, still there"
    );
    assert_eq!(
        reg.raw("DELETE", &format!("/v2/m/manifests/{idx}"), t, &[], None)
            .code,
        202
    );
    assert_eq!(
        reg.raw("DELETE", &format!("/v2/m/manifests/{md}"), t, &[], None)
            .code,
        202
    );
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/v1", t, &[], None)
            .error_code(),
        "MANIFEST_UNKNOWN"
    );

    // A user (not admin) pulls, is denied push and delete.
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "alice", pw);
    let alice = reg.cp.token("alice", pw);
    let a = Some(alice.as_str());
    assert_eq!(reg.raw("GET", "/v2/m/manifests/d1", a, &[], None).code, 200);
    let r = reg.raw("POST", "/v2/m/blobs/uploads/", a, &[], None);
    assert_eq!((r.code, r.error_code().as_str()), (403, "DENIED"));
    let r = reg.raw("DELETE", "/v2/m/manifests/d1", a, &[], None);
    assert_eq!((r.code, r.error_code().as_str()), (403, "DENIED"));

    // The token endpoint: password or MCIAS token as the password; grants are
    // requested ∩ allowed.
    let service = reg.host.clone();
    let token_for = |user: &str, secret: &str, scope: &str| {
        let url = reg.url(&format!("/v2/token?service={service}&scope={scope}"));
        let (code, body) = crate::support::curl(&[
            "--cacert",
            &reg.cp.ca,
            "-u",
            &format!("{user}:{secret}"),
            &url,
        ]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        (code, v["token"].as_str().unwrap_or("").to_owned())
    };
    let (code, pull_only) = token_for("admin", &reg.cp.password, "repository:m:pull");
    assert_eq!(code, 200);
    assert!(pull_only.starts_with("mcr1."));
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/d1", Some(&pull_only), &[], None)
            .code,
        200
    );
    let r = reg.raw("POST", "/v2/m/blobs/uploads/", Some(&pull_only), &[], None);
    assert_eq!(r.code, 401, "push was never requested");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("insufficient_scope"))
    );
    let (code, alice_push) = token_for("alice", &alice, "repository:m:pull,push");
    assert_eq!(code, 200, "an MCIAS token as the password");
    let r = reg.raw("POST", "/v2/m/blobs/uploads/", Some(&alice_push), &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (403, "DENIED"),
        "requested, not granted"
    );
    assert_eq!(
        token_for("alice", "wrong password", "repository:m:pull").0,
        401
    );
    assert_eq!(
        token_for("admin", &alice, "repository:m:pull").0,
        401,
        "another account's token"
    );
    // The OAuth2 form (POST) gives the same grant; refresh tokens are not issued.
    let form = format!(
        "grant_type=password&username=admin&password={}&service={service}&scope=repository:m:pull",
        reg.cp.password
    );
    let form_type = "content-type: application/x-www-form-urlencoded";
    let r = reg.raw(
        "POST",
        "/v2/token",
        None,
        &[form_type],
        Some(form.as_bytes()),
    );
    assert_eq!((r.code, r.header("cache-control")), (200, Some("no-store")));
    let v = r.json();
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(v["expires_in"], 300);
    let posted = v["token"].as_str().expect("token").to_owned();
    assert_eq!(
        reg.raw("GET", "/v2/m/tags/list", Some(&posted), &[], None)
            .code,
        200
    );
    let refresh = b"grant_type=refresh_token&refresh_token=x";
    assert_eq!(
        reg.raw("POST", "/v2/token", None, &[form_type], Some(refresh))
            .code,
        400
    );

    // A scoped MCIAS token (system accounts carry no roles, so under the
    // interim policy they pull only): its scopes narrow that to ci/*.
    push_blob(&reg, "ci/app", b"ci bytes");
    let (code, body) = reg.cp.call(
        "POST",
        "/v1/iam/accounts",
        t,
        Some(serde_json::json!({"username": "ci", "type": "system"})),
    );
    assert_eq!(code, 201, "{body}");
    let issue = |scopes: serde_json::Value| {
        let (code, body) = reg.cp.call(
            "POST",
            "/v1/iam/tokens",
            t,
            Some(serde_json::json!({
            "account_id": "ci", "ttl_seconds": 600, "scopes": scopes})),
        );
        assert_eq!(code, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    };
    let ci = issue(serde_json::json!([
        "mcr:pull:repo/ci/*",
        "mcr:push:repo/ci/*"
    ]));
    let unscoped = issue(serde_json::json!([]));
    let ci_blob = format!("/v2/ci/app/blobs/{}", sha256(b"ci bytes"));
    assert_eq!(reg.raw("GET", &ci_blob, Some(&ci), &[], None).code, 200);
    let r = reg.raw("GET", "/v2/m/manifests/d1", Some(&ci), &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (403, "DENIED"),
        "outside the token's scope"
    );
    assert_eq!(
        reg.raw("GET", "/v2/m/manifests/d1", Some(&unscoped), &[], None)
            .code,
        200
    );
    let r = reg.raw("POST", "/v2/ci/app/blobs/uploads/", Some(&ci), &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (403, "DENIED"),
        "a scope grants nothing the account lacks"
    );
    // Through the token endpoint: the grant is requested ∩ allowed ∩ scopes.
    let (code, ci_reg) = token_for("ci", &ci, "repository:ci/app:pull&scope=repository:m:pull");
    assert_eq!(code, 200);
    assert_eq!(reg.raw("GET", &ci_blob, Some(&ci_reg), &[], None).code, 200);
    let r = reg.raw("GET", "/v2/m/manifests/d1", Some(&ci_reg), &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (403, "DENIED"),
        "requested, not granted"
    );
}

#[test]
fn kill_9_during_a_push_leaves_nothing_partial_and_keeps_what_was_acknowledged() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let acknowledged = push_blob(&reg, "k", b"acknowledged bytes");
    let t = Some(reg.admin.as_str());
    let r = reg.raw("POST", "/v2/k/blobs/uploads/", t, &[], None);
    let loc = r.header("location").expect("location").to_owned();
    let uuid = r.header("docker-upload-uuid").expect("uuid").to_owned();
    assert_eq!(
        reg.raw("PATCH", &loc, t, &["content-range: 0-2"], Some(b"abc"))
            .code,
        202
    );
    // A second chunk streams from a pipe that never ends; kill -9 mid-body.
    let mut curl = std::process::Command::new("curl")
        .args(["-sS", "--cacert", &reg.cp.ca, "-X", "PATCH", "-T", "-"])
        .args(["-H", &format!("authorization: Bearer {}", reg.admin)])
        .arg(reg.url(&loc))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    let mut stdin = curl.stdin.take().expect("stdin");
    let chunk = vec![b'z'; 64 * 1024];
    let data = dir.path().join("mcr/uploads").join(&uuid).join("data");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0) <= 3 {
        stdin.write_all(&chunk).expect("feed curl");
        assert!(
            std::time::Instant::now() < deadline,
            "the chunk never reached the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let reg = reg.kill_and_restart();
    drop(stdin);
    let _ = curl.kill();
    let _ = curl.wait();
    let t = Some(reg.admin.as_str());

    // What was acknowledged is served; nothing of the cut push is visible.
    let r = reg.raw("GET", &format!("/v2/k/blobs/{acknowledged}"), t, &[], None);
    assert_eq!(
        (r.code, r.body.as_slice()),
        (200, b"acknowledged bytes".as_slice())
    );
    let blobs: Vec<_> = walk(&dir.path().join("mcr/blobs"));
    assert_eq!(blobs.len(), 1, "one stored object: {blobs:?}");
    // The session resumes from its staged bytes (a prefix of what was sent).
    let r = reg.raw("GET", &loc, t, &[], None);
    assert_eq!(r.code, 204);
    let end: u64 = r
        .header("range")
        .and_then(|v| v.split_once('-'))
        .and_then(|(_, e)| e.parse().ok())
        .expect("range");
    assert!(end >= 2, "{end}");
    let mut content = b"abc".to_vec();
    content.resize(end as usize + 1, b'z');
    let d = sha256(&content);
    assert_eq!(
        reg.raw("HEAD", &format!("/v2/k/blobs/{d}"), t, &[], None)
            .code,
        404,
        "not committed"
    );
    let r = reg.raw("PUT", &format!("{loc}&digest={d}"), t, &[], None);
    assert_eq!(
        r.code,
        201,
        "the resumed session completes: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        reg.raw("HEAD", &format!("/v2/k/blobs/{d}"), t, &[], None)
            .code,
        200
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
