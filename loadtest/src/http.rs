//! A minimal HTTP/1.1 response reader for the load scenarios: status line,
//! `Content-Length` (or read-to-close), `Connection: close`. Chunked bodies
//! are refused: the harness's backends always send a length.

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// Not `HTTP/1.x 2xx`, or a head we cannot read.
    Malformed,
    /// A status other than 2xx.
    Status(u16),
    /// Transfer-Encoding: chunked (never sent by the harness's backends).
    Chunked,
    /// Bytes after a complete response (we never pipeline).
    Trailing,
}

/// What one call to [`ResponseReader::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More bytes are needed.
    More,
    /// The response is complete.
    Done,
}

#[derive(Debug)]
pub(crate) struct ResponseReader {
    head: Vec<u8>,
    in_body: bool,
    /// Body bytes still expected; `None` = until the connection closes.
    remaining: Option<u64>,
    body: u64,
    close: bool,
    done: bool,
}

impl ResponseReader {
    pub(crate) fn new() -> Self {
        Self {
            head: Vec::with_capacity(512),
            in_body: false,
            remaining: None,
            body: 0,
            close: false,
            done: false,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.head.clear();
        self.in_body = false;
        self.remaining = None;
        self.body = 0;
        self.close = false;
        self.done = false;
    }

    /// Body bytes of the current response so far.
    pub(crate) fn body_len(&self) -> u64 {
        self.body
    }

    /// Whether the server announced it closes the connection after this response.
    pub(crate) fn closes(&self) -> bool {
        self.close
    }

    /// Whether the response ends only when the connection closes.
    pub(crate) fn until_close(&self) -> bool {
        self.in_body && self.remaining.is_none()
    }

    /// The connection closed: completes a read-to-close body.
    pub(crate) fn on_eof(&mut self) -> Progress {
        if self.until_close() {
            self.done = true;
            Progress::Done
        } else {
            Progress::More
        }
    }

    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<Progress, HttpError> {
        if self.done {
            return if data.is_empty() {
                Ok(Progress::Done)
            } else {
                Err(HttpError::Trailing)
            };
        }
        if !self.in_body {
            // Search only the new bytes (plus the 3 before them) for the blank line.
            let from = self.head.len().saturating_sub(3);
            let take = data
                .len()
                .min(MAX_HEAD + 4 - self.head.len().min(MAX_HEAD + 4));
            self.head.extend_from_slice(&data[..take]);
            let Some(end) = find_blank_line(&self.head[from..]).map(|e| from + e) else {
                if self.head.len() > MAX_HEAD {
                    return Err(HttpError::Malformed);
                }
                return Ok(Progress::More);
            };
            let extra = self.head.len() - end;
            let consumed_new = take - extra;
            self.parse_head(end)?;
            self.head.truncate(end);
            self.in_body = true;
            data = &data[consumed_new..];
        }
        match self.remaining {
            Some(left) => {
                let n = (data.len() as u64).min(left);
                self.body += n;
                self.remaining = Some(left - n);
                if n < data.len() as u64 {
                    return Err(HttpError::Trailing);
                }
                if left == n {
                    self.done = true;
                    return Ok(Progress::Done);
                }
                Ok(Progress::More)
            }
            None => {
                self.body += data.len() as u64;
                Ok(Progress::More)
            }
        }
    }

    /// Parses `self.head[..end]` (which ends with the blank line).
    fn parse_head(&mut self, end: usize) -> Result<(), HttpError> {
        let text = std::str::from_utf8(&self.head[..end]).map_err(|_| HttpError::Malformed)?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().ok_or(HttpError::Malformed)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(HttpError::Malformed);
        }
        let code: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or(HttpError::Malformed)?;
        if !(200..300).contains(&code) {
            return Err(HttpError::Status(code));
        }
        self.close = version == "HTTP/1.0";
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or(HttpError::Malformed)?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                self.remaining = Some(value.parse().map_err(|_| HttpError::Malformed)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(HttpError::Chunked);
            } else if name.eq_ignore_ascii_case("connection") {
                self.close = value.eq_ignore_ascii_case("close");
            }
        }
        if self.remaining == Some(0) {
            self.done = true;
        }
        Ok(())
    }
}

/// The offset just past the first `\r\n\r\n`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_response_in_one_piece() {
        let mut r = ResponseReader::new();
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        assert_eq!(r.feed(resp), Ok(Progress::Done));
        assert_eq!(r.body_len(), 3);
        assert!(r.closes());
    }

    #[test]
    fn byte_by_byte() {
        let mut r = ResponseReader::new();
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let mut last = Progress::More;
        for b in resp.iter() {
            last = r.feed(std::slice::from_ref(b)).expect("valid");
        }
        assert_eq!(last, Progress::Done);
        assert_eq!(r.body_len(), 5);
        assert!(!r.closes());
        r.reset();
        assert_eq!(r.feed(resp), Ok(Progress::Done));
    }

    #[test]
    fn errors() {
        let mut r = ResponseReader::new();
        assert_eq!(
            r.feed(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
            Err(HttpError::Status(502))
        );
        let mut r = ResponseReader::new();
        assert_eq!(
            r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"),
            Err(HttpError::Trailing)
        );
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"SSH-2.0\r\n\r\n"), Err(HttpError::Malformed));
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(&[b'a'; MAX_HEAD + 10]), Err(HttpError::Malformed));
    }

    #[test]
    fn read_to_close() {
        let mut r = ResponseReader::new();
        assert_eq!(r.feed(b"HTTP/1.0 200 OK\r\n\r\nabc"), Ok(Progress::More));
        assert!(r.until_close());
        assert_eq!(r.on_eof(), Progress::Done);
        assert_eq!(r.body_len(), 3);
    }
}
