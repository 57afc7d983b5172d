//! The two byte-range headers the registry reads: an upload chunk's
//! `Content-Range: <first>-<last>` and a blob GET's `Range: bytes=…`.
//!
//! Pure and fuzzed. Invariant: a returned range is inclusive, `first <=
//! last`, and (for `Range`) within the blob.

/// An inclusive byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    #[allow(clippy::len_without_is_empty)] // never empty: first <= last
    pub fn len(self) -> u64 {
        self.last - self.first + 1
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Content-Range` of a PATCH: `^[0-9]+-[0-9]+$` with `first <= last`.
pub fn content_range(v: &str) -> Option<ByteRange> {
    let (a, b) = v.split_once('-')?;
    let (first, last) = (number(a)?, number(b)?);
    (first <= last).then_some(ByteRange { first, last })
}

/// What a `Range` header asks of a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable single range (absent, several, or not bytes): the whole blob.
    Whole,
    /// 206 with this range.
    Partial(ByteRange),
    /// 416 with `Content-Range: bytes */<size>`.
    Unsatisfiable,
}

/// Interprets `Range: bytes=a-b | a- | -n` (one range) against `size`.
pub fn range(v: Option<&str>, size: u64) -> RangeAnswer {
    let Some(v) = v else {
        return RangeAnswer::Whole;
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let r = if a.is_empty() {
        // Suffix: the last n bytes.
        let Some(n) = number(b) else {
            return RangeAnswer::Whole;
        };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange {
            first: size.saturating_sub(n),
            last: size - 1,
        }
    } else {
        let Some(first) = number(a) else {
            return RangeAnswer::Whole;
        };
        let last = if b.is_empty() {
            u64::MAX
        } else {
            match number(b) {
                Some(l) if l >= first => l,
                _ => return RangeAnswer::Whole,
            }
        };
        if first >= size {
            return RangeAnswer::Unsatisfiable;
        }
        ByteRange {
            first,
            last: last.min(size - 1),
        }
    };
    RangeAnswer::Partial(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("0-9"), Some(ByteRange { first: 0, last: 9 }));
        assert_eq!(content_range("5-5").map(ByteRange::len), Some(1));
        for bad in [
            "",
            "-",
            "9-0",
            "bytes 0-9",
            "0-9/10",
            " 0-9",
            "a-b",
            "1-",
            "-1",
            "0-99999999999999999999",
        ] {
            assert_eq!(content_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        let p = |first, last| Partial(ByteRange { first, last });
        assert_eq!(range(None, 10), Whole);
        assert_eq!(range(Some("bytes=0-4"), 10), p(0, 4));
        assert_eq!(range(Some("bytes=5-"), 10), p(5, 9));
        assert_eq!(range(Some("bytes=5-100"), 10), p(5, 9));
        assert_eq!(range(Some("bytes=-3"), 10), p(7, 9));
        assert_eq!(range(Some("bytes=-30"), 10), p(0, 9));
        assert_eq!(range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(range(Some("bytes=0-1,3-4"), 10), Whole);
        assert_eq!(range(Some("items=0-1"), 10), Whole);
        assert_eq!(range(Some("bytes=4-2"), 10), Whole);
    }

    proptest::proptest! {
        #[test]
        fn any_header_gives_an_in_bounds_answer(v in "\\PC{0,40}", size in 0u64..1000) {
            if let RangeAnswer::Partial(r) = range(Some(&v), size) {
                proptest::prop_assert!(r.first <= r.last && r.last < size);
            }
            if let Some(r) = content_range(&v) {
                proptest::prop_assert!(r.first <= r.last);
            }
        }
    }
}
