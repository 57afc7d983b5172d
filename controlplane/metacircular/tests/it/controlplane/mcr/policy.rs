//! MCR policy, public pull, quotas and the admin API end to end: skopeo
//! (with and without credentials) and raw requests against `mcd
//! controlplane`, rules and settings changed through `/v1/registry/…` and
//! `mcctl registry` over gRPC.

use std::path::Path;
use std::process::Output;

use super::skopeo::ok;
use super::{Fixture, Mcctl, Registry, sha256, skopeo};

/// skopeo `copy` of the layout's `tag` to `repo:tag` with optional creds.
fn push(
    reg: &Registry,
    d: &Path,
    src: &Path,
    tag: &str,
    repo: &str,
    creds: Option<&str>,
) -> Output {
    reg.copy(d, src, tag, &format!("{repo}:{tag}"), creds)
}

/// skopeo `inspect --raw` of `repo:tag` with optional creds.
fn inspect(reg: &Registry, d: &Path, repo: &str, tag: &str, creds: Option<&str>) -> Output {
    let certs = reg.certs.display().to_string();
    let r = format!("docker://{}/{repo}:{tag}", reg.host);
    let mut args = vec!["inspect", "--raw", "--cert-dir", &certs];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    } else {
        args.push("--no-creds");
    }
    args.push(&r);
    skopeo(d, &args)
}

fn failed_with(out: &Output, what: &str, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(!out.status.success(), "{what} should fail");
    assert!(
        needles.iter().any(|n| err.contains(n)),
        "{what}: expected one of {needles:?} in: {err}"
    );
}

fn admin_call(
    reg: &Registry,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let (code, v) = reg.cp.call(method, path, Some(&reg.admin), body);
    assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
    v
}

#[test]
fn policy_denies_push_allows_pull_and_scoped_tokens_stay_in_their_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture { reg, src, v1, .. } = Registry::with_image(d, "", &["apps/web:v1"]);

    // A user without push: skopeo and raw requests get DENIED; pull works.
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "alice", pw);
    let alice = format!("alice:{pw}");
    failed_with(
        &push(&reg, d, &src, "v1", "apps/mine", Some(&alice)),
        "a push without the right",
        &["denied"],
    );
    let alice_token = reg.cp.token("alice", pw);
    let r = reg.raw(
        "POST",
        "/v2/apps/web/blobs/uploads/",
        Some(&alice_token),
        &[],
        None,
    );
    assert_eq!((r.code, r.error_code().as_str()), (403, "DENIED"));
    let raw = ok(
        &inspect(&reg, d, "apps/web", "v1", Some(&alice)),
        "alice pulls",
    );
    assert_eq!(sha256(raw.as_bytes()), v1);

    // A rule grants her push on her namespace only; a deny rule wins over it.
    admin_call(
        &reg,
        "POST",
        "/v1/registry/policy",
        Some(
            serde_json::json!({"id": "alice-push", "effect": "allow", "accounts": ["alice"],
            "repositories": ["alice/**"], "actions": ["pull", "push"]}),
        ),
    );
    ok(
        &push(&reg, d, &src, "v1", "alice/app", Some(&alice)),
        "push by rule",
    );
    failed_with(
        &push(&reg, d, &src, "v1", "apps/mine", Some(&alice)),
        "outside the rule",
        &["denied"],
    );
    admin_call(
        &reg,
        "POST",
        "/v1/registry/policy",
        Some(
            serde_json::json!({"id": "no-alice-secret", "effect": "deny", "accounts": ["alice"],
            "repositories": ["alice/secret*"], "actions": ["pull", "push"]}),
        ),
    );
    failed_with(
        &push(&reg, d, &src, "v1", "alice/secret-x", Some(&alice)),
        "deny wins",
        &["denied", "403 (forbidden)"],
    );
    // A removed rule takes effect at once, even for a live registry token.
    let url = reg.url(&format!(
        "/v2/token?service={}&scope=repository:alice/app:pull,push",
        reg.host
    ));
    let (code, body) = crate::support::curl(&["--cacert", &reg.cp.ca, "-u", &alice, &url]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let live = v["token"].as_str().expect("token").to_owned();
    let path = "/v2/alice/app/blobs/uploads/";
    let r = reg.raw("POST", path, Some(&live), &[], None);
    assert_eq!(r.code, 202, "granted while the rule exists");
    admin_call(&reg, "DELETE", "/v1/registry/policy/alice-push", None);
    let r = reg.raw("POST", path, Some(&live), &[], None);
    assert_eq!(
        (r.code, r.error_code().as_str()),
        (403, "DENIED"),
        "rule removed"
    );

    // A system account granted push on everything by rule; its MCIAS token
    // scoped to ci/* pushes there and nowhere else.
    let (code, body) = reg.cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&reg.admin),
        Some(serde_json::json!({"username": "ci", "type": "system"})),
    );
    assert_eq!(code, 201, "{body}");
    admin_call(
        &reg,
        "POST",
        "/v1/registry/policy",
        Some(
            serde_json::json!({"id": "ci", "effect": "allow", "account_types": ["system"],
            "accounts": ["ci"], "repositories": ["**"], "actions": ["pull", "push"]}),
        ),
    );
    let (code, body) = reg.cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(&reg.admin),
        Some(serde_json::json!({"account_id": "ci", "ttl_seconds": 600,
            "scopes": ["mcr:pull:repo/ci/*", "mcr:push:repo/ci/*"]})),
    );
    assert_eq!(code, 201, "{body}");
    let ci = format!("ci:{}", body["token"].as_str().expect("token"));
    ok(
        &push(&reg, d, &src, "v1", "ci/app", Some(&ci)),
        "in its scope",
    );
    failed_with(
        &push(&reg, d, &src, "v1", "apps/web", Some(&ci)),
        "a token scoped to ci/* pushing to apps/web",
        &["denied", "403 (forbidden)"],
    );
    let ci_token = ci.trim_start_matches("ci:");
    let r = reg.raw(
        "POST",
        "/v2/apps/web/blobs/uploads/",
        Some(ci_token),
        &[],
        None,
    );
    assert_eq!((r.code, r.error_code().as_str()), (403, "DENIED"));
    let r = reg.raw(
        "POST",
        "/v2/ci/other/blobs/uploads/",
        Some(ci_token),
        &[],
        None,
    );
    assert_eq!(r.code, 202, "anywhere in its scope");

    // Refusals and rule changes are audited.
    let audit = admin_call(&reg, "GET", "/v1/registry/audit?limit=500", None);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "registry.denied",
        "registry.policy.create",
        "registry.policy.delete",
        "registry.push",
    ] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
    let denied = admin_call(
        &reg,
        "GET",
        "/v1/registry/audit?action=registry.denied&target=apps%2Fweb",
        None,
    );
    assert!(
        denied["events"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["result"] == "denied") && !e.is_empty()),
        "{denied}"
    );
}

#[test]
fn anonymous_pull_only_from_public_repositories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture { reg, src, v1, .. } =
        Registry::with_image(d, "", &["apps/web:v1", "apps/private:v1"]);

    failed_with(
        &inspect(&reg, d, "apps/web", "v1", None),
        "anonymous before public",
        &["unauthorized", "authentication required", "401"],
    );
    let manifest = format!("/v2/apps/web/manifests/{v1}");
    assert_eq!(reg.raw("GET", &manifest, None, &[], None).code, 401);

    let v = admin_call(
        &reg,
        "PATCH",
        "/v1/registry/repositories/apps%2Fweb",
        Some(serde_json::json!({"public_pull": true})),
    );
    assert_eq!(v["public_pull"], true, "{v}");
    let raw = ok(&inspect(&reg, d, "apps/web", "v1", None), "anonymous pull");
    assert_eq!(sha256(raw.as_bytes()), v1);
    let r = reg.raw("GET", &manifest, None, &[], None);
    assert_eq!(r.code, 200, "no token at all");
    let out = d.join("anon-out");
    let certs = reg.certs.display().to_string();
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--src-no-creds",
                "--src-cert-dir",
                &certs,
                &format!("docker://{}/apps/web:v1", reg.host),
                &format!("oci:{}:v1", out.display()),
            ],
        ),
        "anonymous copy out",
    );
    // Public is pull only, and only for that repository.
    failed_with(
        &push(&reg, d, &src, "v1", "apps/web", None),
        "anonymous push",
        &["unauthorized", "authentication required", "401", "denied"],
    );
    let r = reg.raw("POST", "/v2/apps/web/blobs/uploads/", None, &[], None);
    assert_eq!(r.code, 401);
    failed_with(
        &inspect(&reg, d, "apps/private", "v1", None),
        "another repository",
        &["unauthorized", "authentication required", "401"],
    );
    assert_eq!(reg.raw("GET", "/v2/_catalog", None, &[], None).code, 401);

    // Back to private through mcctl (gRPC).
    let mcctl = Mcctl::new(&reg, d);
    let out = mcctl.run(&["registry", "repos", "set", "apps/web", "--private"]);
    assert_eq!(out["public_pull"], false, "{out}");
    failed_with(
        &inspect(&reg, d, "apps/web", "v1", None),
        "anonymous after private",
        &["unauthorized", "authentication required", "401"],
    );
}

#[test]
fn over_quota_pushes_are_refused_and_leave_nothing_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture {
        reg, src, admin, ..
    } = Registry::with_image(d, "", &[]);
    let mcctl = Mcctl::new(&reg, d);
    let q = mcctl.run(&["registry", "quota", "set", "apps/small", "200"]);
    assert_eq!(q["quota_bytes"], 200, "{q}");

    failed_with(
        &push(&reg, d, &src, "v1", "apps/small", Some(&admin)),
        "over quota",
        // skopeo pushes in chunks: the chunk larger than what is left is
        // SIZE_INVALID; a monolithic push is DENIED at completion (below).
        &["quota exceeded", "denied", "size invalid"],
    );
    let tags = reg.raw(
        "GET",
        "/v2/apps/small/tags/list",
        Some(&reg.admin),
        &[],
        None,
    );
    let listed = tags.json()["tags"].as_array().map_or(0, Vec::len);
    assert_eq!(
        listed,
        0,
        "no tag visible: {}",
        String::from_utf8_lossy(&tags.body)
    );
    let q = mcctl.run(&["registry", "quota", "show", "apps/small"]);
    assert!(
        q["used_bytes"].as_u64().is_some_and(|u| u <= 200),
        "usage stays within the quota: {q}"
    );

    // Raw: a monolithic upload past the quota is DENIED at completion;
    // a chunk alone larger than what is left is SIZE_INVALID at once.
    let big = vec![b'x'; 300];
    let path = format!("/v2/apps/small/blobs/uploads/?digest={}", sha256(&big));
    let r = reg.raw(
        "POST",
        &path,
        Some(&reg.admin),
        &["content-type: application/octet-stream"],
        Some(&big),
    );
    assert_eq!((r.code, r.error_code().as_str()), (403, "DENIED"));
    let blob = format!("/v2/apps/small/blobs/{}", sha256(&big));
    assert_eq!(
        reg.raw("HEAD", &blob, Some(&reg.admin), &[], None).code,
        404
    );
    let r = reg.raw(
        "POST",
        "/v2/apps/small/blobs/uploads/",
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!(r.code, 202);
    let location = r.header("location").expect("location").to_owned();
    let r = reg.raw(
        "PATCH",
        &location,
        Some(&reg.admin),
        &["content-type: application/octet-stream"],
        Some(&big),
    );
    assert_eq!((r.code, r.error_code().as_str()), (413, "SIZE_INVALID"));

    // Raising the quota lets the same push through; usage is visible.
    mcctl.run(&["registry", "quota", "set", "apps/small", "10MiB"]);
    ok(
        &push(&reg, d, &src, "v1", "apps/small", Some(&admin)),
        "within quota",
    );
    let q = mcctl.run(&["registry", "quota", "show", "apps/small"]);
    assert!(q["used_bytes"].as_u64().is_some_and(|u| u > 200), "{q}");
    assert_eq!(q["namespace"], "apps");

    // A namespace quota counts every repository in it.
    let used = q["namespace_used_bytes"].as_u64().expect("ns usage");
    let ns = mcctl.run(&[
        "registry",
        "namespaces",
        "set",
        "apps",
        "--quota",
        &(used + 10).to_string(),
    ]);
    assert_eq!(ns["quota_bytes"], used + 10, "{ns}");
    failed_with(
        &push(&reg, d, &src, "v1", "apps/other", Some(&admin)),
        "namespace over quota",
        &["quota exceeded", "denied", "size invalid"],
    );
}

#[test]
fn admin_api_and_mcctl_list_repositories_and_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture {
        reg,
        src,
        v1,
        multi,
        admin,
    } = Registry::with_image(d, "", &["apps/web:v1"]);
    let certs = reg.certs.display().to_string();
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &admin,
                &format!("oci:{}:multi", src.display()),
                &format!("docker://{}/apps/web:multi", reg.host),
            ],
        ),
        "push multi",
    );
    ok(&push(&reg, d, &src, "v1", "tools/x", Some(&admin)), "push");

    // REST.
    let v = admin_call(&reg, "GET", "/v1/registry/repositories", None);
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["apps/web", "tools/x"]);
    let web = admin_call(&reg, "GET", "/v1/registry/repositories/apps%2Fweb", None);
    assert_eq!(web["tag_count"], 2, "{web}");
    assert!(web["size_bytes"].as_u64().is_some_and(|s| s > 0), "{web}");
    let tags = admin_call(
        &reg,
        "GET",
        "/v1/registry/repositories/apps%2Fweb/tags",
        None,
    );
    let tags = tags["tags"].as_array().expect("tags").clone();
    let by_tag = |t: &str| {
        tags.iter()
            .find(|x| x["tag"] == t)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_tag("v1")["digest"], v1.as_str());
    assert_eq!(by_tag("multi")["digest"], multi.as_str());
    assert!(by_tag("v1")["updated_at"].as_i64().is_some_and(|t| t > 0));
    let (code, _) = reg.cp.call(
        "GET",
        "/v1/registry/repositories/Bad%2FName",
        Some(&reg.admin),
        None,
    );
    assert_eq!(code, 400, "a bad name is refused");

    // A user sees what policy lets her pull.
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "bob", pw);
    let bob = reg.cp.token("bob", pw);
    admin_call(
        &reg,
        "POST",
        "/v1/registry/policy",
        Some(
            serde_json::json!({"id": "no-tools", "effect": "deny", "roles": ["user"],
            "repositories": ["tools/**"], "actions": ["pull"]}),
        ),
    );
    let (code, v) = reg
        .cp
        .call("GET", "/v1/registry/repositories", Some(&bob), None);
    assert_eq!(code, 200, "{v}");
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["apps/web"]);
    let (code, _) = reg.cp.call(
        "DELETE",
        "/v1/registry/repositories/apps%2Fweb",
        Some(&bob),
        None,
    );
    assert_eq!(code, 403);

    // mcctl (gRPC) shows the same.
    let mcctl = Mcctl::new(&reg, d);
    let repos = mcctl.run(&["registry", "repos", "list"]);
    let names: Vec<&str> = repos
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["apps/web", "tools/x"]);
    let tags = mcctl.run(&["registry", "tags", "list", "apps/web"]);
    let listed: Vec<&str> = tags
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["tag"].as_str())
        .collect();
    assert_eq!(listed, ["multi", "v1"]);
    assert!(tags[1]["updated_at_unix"].as_i64().is_some_and(|t| t > 0));

    // Delete through mcctl: gone from /v2 and the listing.
    mcctl.run(&["registry", "repos", "delete", "tools/x"]);
    let r = reg.raw("GET", "/v2/tools/x/tags/list", Some(&reg.admin), &[], None);
    assert_eq!((r.code, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
    let repos = mcctl.run(&["registry", "repos", "list"]);
    assert_eq!(repos.as_array().map(Vec::len), Some(1));
    let audit = mcctl.run(&["registry", "audit", "--action", "registry.repo.delete"]);
    assert_eq!(audit[0]["target"], "tools/x", "{audit}");
}

#[test]
fn immutable_tags_refuse_skopeo_moving_or_deleting_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture {
        reg,
        src,
        v1,
        admin,
        ..
    } = Registry::with_image(d, "", &["apps/web:v1"]);
    let mcctl = Mcctl::new(&reg, d);
    let out = mcctl.run(&["registry", "repos", "set", "apps/web", "--immutable", "v*"]);
    assert_eq!(out["immutable_tags"], serde_json::json!(["v*"]), "{out}");

    // Moving v1 to the layout's index, or deleting it, is refused: v1 stays.
    let certs = reg.certs.display().to_string();
    let dest = format!("docker://{}/apps/web:v1", reg.host);
    let index = format!("oci:{}:multi", src.display());
    let copy_index = |to: &str| {
        let dest = format!("docker://{}/apps/web:{to}", reg.host);
        let args = ["copy", "--dest-cert-dir", &certs, "--dest-creds", &admin];
        skopeo(
            d,
            &[&args[..], &["--multi-arch", "all", &index, &dest]].concat(),
        )
    };
    failed_with(&copy_index("v1"), "moving v1", &["immutable", "denied"]);
    let deleted = skopeo(
        d,
        &["delete", "--cert-dir", &certs, "--creds", &admin, &dest],
    );
    failed_with(&deleted, "deleting v1", &["immutable", "denied"]);
    let raw = ok(
        &inspect(&reg, d, "apps/web", "v1", Some(&admin)),
        "v1 stays",
    );
    assert_eq!(sha256(raw.as_bytes()), v1);
    // Other tags still move: the index lands under another name.
    ok(&copy_index("latest"), "a mutable tag");

    // A bad glob is refused over REST and changes nothing; [] clears them.
    let (code, body) = reg.cp.call(
        "PATCH",
        "/v1/registry/repositories/apps%2Fweb",
        Some(&reg.admin),
        Some(serde_json::json!({"immutable_tags": ["v/1"]})),
    );
    assert_eq!(code, 400, "{body}");
    let v = admin_call(&reg, "GET", "/v1/registry/repositories/apps%2Fweb", None);
    assert_eq!(v["immutable_tags"], serde_json::json!(["v*"]), "{v}");
    let out = mcctl.run(&["registry", "repos", "set", "apps/web", "--mutable"]);
    assert_eq!(out["immutable_tags"], serde_json::json!([]), "{out}");
    let deleted = skopeo(
        d,
        &["delete", "--cert-dir", &certs, "--creds", &admin, &dest],
    );
    ok(&deleted, "deleting v1 once mutable");
}
