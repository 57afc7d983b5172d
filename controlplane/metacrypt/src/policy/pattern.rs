//! Path patterns: exact, `*` only at the very end (a prefix, which may end
//! mid-segment: `transit/encrypt/app-*`), `+` as a whole segment (exactly
//! one non-empty segment).

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    segments: Vec<String>,
    /// The last segment is a prefix (the pattern ended in `*`).
    prefix: bool,
}

const MAX_PATTERN: usize = 1024;

impl Pattern {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_PATTERN {
            return Err("1 to 1024 bytes".to_owned());
        }
        if text.chars().any(char::is_control) {
            return Err("no control characters".to_owned());
        }
        let (body, prefix) = match text.strip_suffix('*') {
            Some(b) => (b, true),
            None => (text, false),
        };
        if body.contains('*') {
            return Err("`*` only at the end".to_owned());
        }
        let segments: Vec<String> = body.split('/').map(str::to_owned).collect();
        for (i, s) in segments.iter().enumerate() {
            if s.contains('+') && s != "+" {
                return Err("`+` stands for a whole segment".to_owned());
            }
            if s == "+" && prefix && i + 1 == segments.len() {
                return Err("`+*` is ambiguous: use `+/…` or `*`".to_owned());
            }
        }
        Ok(Self { segments, prefix })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let last = self.segments.len() - 1;
        for (i, seg) in self.segments.iter().enumerate() {
            if i == last && self.prefix {
                if i >= parts.len() {
                    return false;
                }
                // The rest of the path, from this segment on, starts with seg.
                let rest = parts[i..].join("/");
                return rest.starts_with(seg.as_str());
            }
            let Some(part) = parts.get(i) else {
                return false;
            };
            if seg == "+" {
                if part.is_empty() {
                    return false;
                }
            } else if seg != part {
                return false;
            }
        }
        parts.len() == self.segments.len()
    }
}
