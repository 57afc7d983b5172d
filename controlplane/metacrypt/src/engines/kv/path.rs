//! KV paths: at most 1,024 bytes and 32 segments of 1–255 bytes, no NUL or
//! control characters, no `.` or `..` segments.

use crate::error::CryptError;

const MAX_PATH: usize = 1024;
const MAX_SEGMENTS: usize = 32;
const MAX_SEGMENT: usize = 255;

/// A secret's path (no leading or trailing `/`).
pub(crate) fn check_path(path: &str) -> Result<(), CryptError> {
    let bad = |why: &str| Err(CryptError::invalid("path", why));
    if path.is_empty() {
        return bad("required");
    }
    if path.len() > MAX_PATH {
        return bad("at most 1024 bytes");
    }
    if path.chars().any(char::is_control) {
        return bad("no control characters");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return bad("at most 32 segments");
    }
    for s in segments {
        if s.is_empty() || s.len() > MAX_SEGMENT {
            return bad("segments are 1 to 255 bytes (no empty segment, no leading or trailing /)");
        }
        if s == "." || s == ".." {
            return bad("no . or .. segments");
        }
    }
    Ok(())
}

/// A folder to list: empty (the root) or a path, with or without a
/// trailing `/`; answers the normalised prefix (`""` or `a/b/`).
pub(crate) fn check_dir(dir: &str) -> Result<String, CryptError> {
    let trimmed = dir.strip_suffix('/').unwrap_or(dir);
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    check_path(trimmed)?;
    Ok(format!("{trimmed}/"))
}
