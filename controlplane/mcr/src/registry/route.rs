//! `/v2/<path>` → which endpoint, for which repository.
//!
//! Parsed from the right: the suffix decides the endpoint
//! (`manifests/<ref>`, `blobs/<digest>`, `blobs/uploads/[<uuid>]`,
//! `tags/list`, `referrers/<digest>`), everything before it is the
//! repository, so `token`, `x/blobs` or `a/tags` are valid names. Pure (no
//! I/O) and fuzzed. Invariant: a returned route's repository is a valid
//! [`RepoName`]; the reference/digest/uuid strings are not yet validated
//! (the handler answers `DIGEST_INVALID`/`TAG_INVALID` for them).

use crate::model::RepoName;

/// What a `/v2/` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/token`
    Token,
    Manifest(RepoName, String),
    Blob(RepoName, String),
    /// `…/blobs/uploads/` (open a session)
    UploadStart(RepoName),
    /// `…/blobs/uploads/<uuid>`
    Upload(RepoName, String),
    Tags(RepoName),
    Referrers(RepoName, String),
}

/// Why a path names no endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The suffix is an endpoint, the name before it is not valid.
    NameInvalid,
    /// No endpoint has this shape.
    NotFound,
}

/// Parses the part of the path after `/v2/` (no query string).
pub fn parse(rest: &str) -> Result<Route, RouteError> {
    match rest {
        "" => return Ok(Route::Base),
        "_catalog" => return Ok(Route::Catalog),
        "token" => return Ok(Route::Token),
        _ => {}
    }
    let name = |s: &str| RepoName::parse(s).ok_or(RouteError::NameInvalid);
    // `…/blobs/uploads/` and `…/blobs/uploads` open a session.
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(repo) = trimmed.strip_suffix("/blobs/uploads") {
        return Ok(Route::UploadStart(name(repo)?));
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags(name(repo)?));
    }
    let (head, last) = rest.rsplit_once('/').ok_or(RouteError::NotFound)?;
    if last.is_empty() {
        return Err(RouteError::NotFound);
    }
    if let Some(repo) = head.strip_suffix("/blobs/uploads") {
        return Ok(Route::Upload(name(repo)?, last.to_owned()));
    }
    let (repo, kind) = head.rsplit_once('/').ok_or(RouteError::NotFound)?;
    match kind {
        "manifests" => Ok(Route::Manifest(name(repo)?, last.to_owned())),
        "blobs" => Ok(Route::Blob(name(repo)?, last.to_owned())),
        "referrers" => Ok(Route::Referrers(name(repo)?, last.to_owned())),
        _ => Err(RouteError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> RepoName {
        RepoName::parse(s).expect("name")
    }

    #[test]
    fn endpoints_by_suffix() {
        let d = "sha256:abc";
        assert_eq!(parse(""), Ok(Route::Base));
        assert_eq!(parse("_catalog"), Ok(Route::Catalog));
        assert_eq!(parse("token"), Ok(Route::Token));
        assert_eq!(
            parse("apps/web/manifests/v1"),
            Ok(Route::Manifest(n("apps/web"), "v1".into()))
        );
        assert_eq!(
            parse(&format!("a/blobs/{d}")),
            Ok(Route::Blob(n("a"), d.into()))
        );
        assert_eq!(parse("a/blobs/uploads/"), Ok(Route::UploadStart(n("a"))));
        assert_eq!(parse("a/blobs/uploads"), Ok(Route::UploadStart(n("a"))));
        assert_eq!(
            parse("a/b/blobs/uploads/u-1"),
            Ok(Route::Upload(n("a/b"), "u-1".into()))
        );
        assert_eq!(parse("a/tags/list"), Ok(Route::Tags(n("a"))));
        assert_eq!(
            parse(&format!("a/referrers/{d}")),
            Ok(Route::Referrers(n("a"), d.into()))
        );
    }

    #[test]
    fn names_that_look_like_endpoints_are_names() {
        assert_eq!(parse("token/tags/list"), Ok(Route::Tags(n("token"))));
        assert_eq!(
            parse("x/blobs/manifests/latest"),
            Ok(Route::Manifest(n("x/blobs"), "latest".into()))
        );
        assert_eq!(parse("a/tags/tags/list"), Ok(Route::Tags(n("a/tags"))));
        assert_eq!(
            parse("a/blobs/uploads/blobs/uploads/"),
            Ok(Route::UploadStart(n("a/blobs/uploads")))
        );
        assert_eq!(
            parse("_catalog/tags/list"),
            Err(RouteError::NameInvalid),
            "a leading underscore is not a name"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("a"), Err(RouteError::NotFound));
        assert_eq!(parse("a/b"), Err(RouteError::NotFound));
        assert_eq!(parse("a/manifests/"), Err(RouteError::NotFound));
        assert_eq!(parse("manifests/x"), Err(RouteError::NotFound));
        assert_eq!(parse("A/manifests/x"), Err(RouteError::NameInvalid));
        assert_eq!(parse("a//manifests/x"), Err(RouteError::NameInvalid));
        assert_eq!(parse("/manifests/x"), Err(RouteError::NameInvalid));
    }

    proptest::proptest! {
        #[test]
        fn any_path_parses_or_is_refused_without_panic(s in "[a-z0-9/._:-]{0,80}") {
            let _ = parse(&s);
        }

        /// Any valid name with any endpoint suffix parses back to that name.
        #[test]
        fn valid_names_round_trip(
            parts in proptest::collection::vec("[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4})?", 1..6),
            kind in 0..5usize,
            r in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,10}",
        ) {
            let name = parts.join("/");
            // `<name>/blobs/uploads` opens a session: never a blob named "uploads".
            proptest::prop_assume!(!(kind == 1 && r == "uploads"));
            let repo = n(&name);
            let (path, want) = match kind {
                0 => (format!("{name}/manifests/{r}"), Route::Manifest(repo, r)),
                1 => (format!("{name}/blobs/{r}"), Route::Blob(repo, r)),
                2 => (format!("{name}/blobs/uploads/{r}"), Route::Upload(repo, r)),
                3 => (format!("{name}/tags/list"), Route::Tags(repo)),
                _ => (format!("{name}/referrers/{r}"), Route::Referrers(repo, r)),
            };
            proptest::prop_assert_eq!(parse(&path), Ok(want));
        }
    }
}
