//! Globs for repository names and tags: `*` matches any run of characters
//! within one component, `**` (a whole component) any number of
//! components, anything else literally. Pure; bounded by the pattern and
//! name lengths the callers enforce.

/// Whether one component glob matches `s` (no `/` in either).
fn component(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point: linear in practice.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn components(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|i| components(rest, &s[i..])),
        Some((first, rest)) => match s.split_first() {
            Some((c, srest)) => {
                component(first.as_bytes(), c.as_bytes()) && components(rest, srest)
            }
            None => false,
        },
    }
}

/// Whether a repository glob matches a repository name.
pub(crate) fn repo_matches(pattern: &str, repo: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = repo.split('/').collect();
    components(&p, &s)
}

/// Whether a tag glob matches a tag.
pub(crate) fn tag_matches(pattern: &str, tag: &str) -> bool {
    component(pattern.as_bytes(), tag.as_bytes())
}

/// Components in a pattern; `**` at most twice (the match stays cheap).
const MAX_COMPONENTS: usize = 16;

pub(crate) fn check_repo_pattern(p: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = p.split('/').collect();
    if parts.len() > MAX_COMPONENTS {
        return Err("too many components");
    }
    if parts.iter().filter(|c| **c == "**").count() > 2 {
        return Err("at most two ** components");
    }
    for c in parts {
        if c.is_empty() {
            return Err("empty component");
        }
        if c.contains("**") && c != "**" {
            return Err("** must be a whole component");
        }
        let ok = c
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-*".contains(&b));
        if !ok {
            return Err("only lowercase letters, digits, . _ - and *");
        }
    }
    Ok(())
}

pub(crate) fn check_tag_pattern(p: &str) -> Result<(), &'static str> {
    if p.len() > 128 {
        return Err("at most 128 bytes");
    }
    let ok = p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("only letters, digits, . _ - and *")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_globs() {
        assert!(repo_matches("**", "a"));
        assert!(repo_matches("**", "a/b/c"));
        assert!(repo_matches("apps/*", "apps/web"));
        assert!(!repo_matches("apps/*", "apps/web/x"));
        assert!(!repo_matches("apps/*", "apps"));
        assert!(repo_matches("apps/**", "apps"));
        assert!(repo_matches("apps/**", "apps/web/x"));
        assert!(repo_matches("ci/**/cache", "ci/a/b/cache"));
        assert!(repo_matches("ci/**/cache", "ci/cache"));
        assert!(!repo_matches("ci/**/cache", "ci/a/b"));
        assert!(repo_matches("apps/web-*", "apps/web-1"));
        assert!(!repo_matches("apps/web-*", "apps/api-1"));
        assert!(repo_matches("apps/web", "apps/web"));
        assert!(!repo_matches("apps/web", "apps/webx"));
        assert!(!repo_matches("apps/*", "other/web"));
    }

    #[test]
    fn tag_globs() {
        assert!(tag_matches("v*", "v1.2"));
        assert!(!tag_matches("v*", "latest"));
        assert!(tag_matches("*-rc*", "1.0-rc2"));
        assert!(tag_matches("latest", "latest"));
        assert!(tag_matches("*", "x"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_repo_pattern("apps/**").is_ok());
        assert!(check_repo_pattern("apps//x").is_err());
        assert!(check_repo_pattern("Apps").is_err());
        assert!(check_repo_pattern("a**").is_err());
        assert!(check_repo_pattern("**/**/**").is_err());
        assert!(check_tag_pattern("v*").is_ok());
        assert!(check_tag_pattern("v/x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in "[a-z*/]{0,30}", s in "[a-z/]{0,30}") {
            let _ = repo_matches(&p, &s);
            let _ = tag_matches(&p, &s);
        }
    }
}
