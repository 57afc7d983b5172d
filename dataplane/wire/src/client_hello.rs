//! The TLS ClientHello as it arrives at the start of a TCP stream (RFC 8446 §4.1.2,
//! §5.1; RFC 6066 §3 for SNI; RFC 7301 for ALPN).
//!
//! [`parse`] is incremental and stateless: pass every byte received so far from the start
//! of the stream; it answers [`Parse::Incomplete`] until the whole ClientHello has arrived.
//! The handshake message may be fragmented over any number of TLS records, and the
//! records over any TCP segmentation.
//!
//! Bounds: the caller's `max_len` caps the bytes (records with their headers) the
//! ClientHello may occupy, and [`ClientHelloError::TooLarge`] is returned as soon as the
//! lengths already received show it cannot fit, before the bytes themselves arrive. The
//! only allocations are a reassembly buffer of at most `max_len` bytes when the message
//! spans records, the host name (at most 253 bytes) and the ALPN list (at most
//! [`MAX_ALPN_PROTOCOLS`] names of at most 255 bytes). A call costs O(records so far),
//! and a record is at least 6 bytes.

use std::borrow::Cow;

/// A reasonable `max_len` for [`parse`]: one full TLS record (post-quantum key shares and
/// ECH make ClientHellos of 2 KiB common; 16 KiB leaves room and stays cheap).
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;

/// The most ALPN protocol names a ClientHello may offer; more is [`ClientHelloError::Malformed`].
pub const MAX_ALPN_PROTOCOLS: usize = 16;

const CONTENT_TYPE_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
/// RFC 8446 §5.1: a TLSPlaintext fragment is at most 2^14 bytes.
const MAX_FRAGMENT_LEN: usize = 1 << 14;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const SNI_HOST_NAME: u8 = 0;
const MAX_HOSTNAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// The result of [`parse`] when nothing is wrong so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// The ClientHello has not fully arrived: call again with more bytes.
    Incomplete,
    /// The whole ClientHello arrived and is well formed.
    Complete(ClientHello),
}

/// What the data plane needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The `host_name` of the SNI extension: a valid DNS host name, lower-cased, without
    /// a trailing dot. `None` when the extension (or its host_name entry) is absent.
    pub server_name: Option<String>,
    /// The ALPN protocol names in the client's order (empty when the extension is absent).
    pub alpn: Vec<Vec<u8>>,
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3 clients).
    pub legacy_version: u16,
    /// Whether the `supported_versions` extension is present (a TLS 1.3-capable client).
    pub supported_versions: bool,
    /// How many bytes at the start of the stream the ClientHello's records occupy; bytes
    /// after this (early data, change_cipher_spec) belong to the rest of the stream.
    pub record_bytes: usize,
}

/// Why a stream's first bytes are not an acceptable ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHelloError {
    /// The stream does not start with a TLS handshake record.
    #[error("not TLS: the stream does not start with a TLS handshake record")]
    NotTls,
    /// The first handshake message is not a ClientHello.
    #[error("the first TLS handshake message is not a ClientHello")]
    NotClientHello,
    /// The ClientHello needs more than the `max_len` bytes allowed.
    #[error("the ClientHello is larger than allowed")]
    TooLarge,
    /// The bytes break the TLS encoding; the reason names the rule.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    /// The SNI host_name is not a valid DNS host name.
    #[error("the SNI server name is not a valid DNS host name")]
    BadServerName,
}

/// Whether a stream whose first byte is `first` may be TLS (a handshake record).
pub fn looks_like_tls(first: u8) -> bool {
    first == CONTENT_TYPE_HANDSHAKE
}

/// Parses the ClientHello at the start of `buf`, the bytes received so far from the start
/// of the stream. At most `max_len` bytes of records (headers included) are accepted.
pub fn parse(buf: &[u8], max_len: usize) -> Result<Parse, ClientHelloError> {
    let Some(layout) = scan_records(buf, max_len)? else {
        return Ok(Parse::Incomplete);
    };
    let message = reassemble(buf, &layout)?;
    let body = message
        .get(HANDSHAKE_HEADER_LEN..)
        .ok_or(ClientHelloError::Malformed("handshake header missing"))?;
    let mut hello = parse_body(body)?;
    hello.record_bytes = layout.record_bytes;
    Ok(Parse::Complete(hello))
}

/// Where the ClientHello's records lie in the buffer.
struct Layout {
    /// Bytes of records from the start of the stream through the last ClientHello byte.
    record_bytes: usize,
    /// Handshake message length, header included.
    message_len: usize,
    /// Whether the message sits in a single record.
    single_record: bool,
}

/// Walks the record headers. `Ok(None)` = incomplete; lengths are checked against
/// `max_len` as soon as they are known.
fn scan_records(buf: &[u8], max_len: usize) -> Result<Option<Layout>, ClientHelloError> {
    let mut off = 0usize; // start of the current record
    let mut hs_before = 0usize; // handshake bytes in the records before `off`
    let mut hs_header = [0u8; HANDSHAKE_HEADER_LEN];
    let mut message_len: Option<usize> = None;
    let mut records = 0usize;
    loop {
        let first = records == 0;
        let rest = buf.get(off..).unwrap_or_default();
        check_record_header(rest, first)?;
        if off.saturating_add(RECORD_HEADER_LEN) > max_len {
            return Err(ClientHelloError::TooLarge);
        }
        let Some(&[_, _, _, len_hi, len_lo]) = rest.get(..RECORD_HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len == 0 {
            return Err(ClientHelloError::Malformed("empty handshake record"));
        }
        if len > MAX_FRAGMENT_LEN {
            return Err(ClientHelloError::Malformed("record longer than 2^14 bytes"));
        }
        let frag_start = off.saturating_add(RECORD_HEADER_LEN);
        let rec_end = frag_start.saturating_add(len);

        // The handshake header may itself be split over records: gather what is here.
        let available = buf
            .get(frag_start..rec_end.min(buf.len()))
            .unwrap_or_default();
        for (slot, &b) in hs_header.iter_mut().skip(hs_before).zip(available) {
            *slot = b;
        }
        let header_known = hs_before.saturating_add(available.len());
        let [msg_type, a, b, c] = hs_header;
        if header_known >= 1 && msg_type != HANDSHAKE_CLIENT_HELLO {
            return Err(ClientHelloError::NotClientHello);
        }
        if message_len.is_none() && header_known >= HANDSHAKE_HEADER_LEN {
            let body_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            message_len = Some(HANDSHAKE_HEADER_LEN + body_len);
        }

        let hs_after = hs_before.saturating_add(len);
        let needed = match message_len {
            Some(m) => {
                if hs_after > m {
                    return Err(ClientHelloError::Malformed(
                        "ClientHello does not end at a record boundary",
                    ));
                }
                let remaining = m - hs_after;
                let more_records = remaining.div_ceil(MAX_FRAGMENT_LEN);
                rec_end
                    .saturating_add(remaining)
                    .saturating_add(more_records.saturating_mul(RECORD_HEADER_LEN))
            }
            // The handshake header ends in a later record: one more header at least.
            None if hs_after < HANDSHAKE_HEADER_LEN => rec_end
                .saturating_add(RECORD_HEADER_LEN)
                .saturating_add(HANDSHAKE_HEADER_LEN - hs_after),
            None => rec_end,
        };
        if needed > max_len {
            return Err(ClientHelloError::TooLarge);
        }
        if rec_end > buf.len() {
            return Ok(None);
        }
        records += 1;
        hs_before = hs_after;
        off = rec_end;
        if let Some(m) = message_len
            && m == hs_before
        {
            return Ok(Some(Layout {
                record_bytes: rec_end,
                message_len: m,
                single_record: records == 1,
            }));
        }
    }
}

/// Checks the record header bytes present in `rest` (possibly fewer than five).
fn check_record_header(rest: &[u8], first: bool) -> Result<(), ClientHelloError> {
    let fail = |reason| {
        Err(if first {
            ClientHelloError::NotTls
        } else {
            ClientHelloError::Malformed(reason)
        })
    };
    if let Some(&ty) = rest.first()
        && ty != CONTENT_TYPE_HANDSHAKE
    {
        return fail("non-handshake record inside the ClientHello");
    }
    if let Some(&major) = rest.get(1)
        && major != 3
    {
        return fail("record version is not 3.x");
    }
    if let Some(&minor) = rest.get(2)
        && minor > 4
    {
        return fail("record version is not 3.0-3.4");
    }
    Ok(())
}

/// The handshake message: borrowed when in one record, copied (≤ `max_len`) otherwise.
fn reassemble<'a>(buf: &'a [u8], layout: &Layout) -> Result<Cow<'a, [u8]>, ClientHelloError> {
    const BUG: ClientHelloError = ClientHelloError::Malformed("record layout changed");
    if layout.single_record {
        let end = RECORD_HEADER_LEN.saturating_add(layout.message_len);
        return buf
            .get(RECORD_HEADER_LEN..end)
            .map(Cow::Borrowed)
            .ok_or(BUG);
    }
    let mut message = Vec::with_capacity(layout.message_len);
    let mut off = 0usize;
    while off < layout.record_bytes {
        let Some(&[_, _, _, hi, lo]) = buf.get(off..off.saturating_add(RECORD_HEADER_LEN)) else {
            return Err(BUG);
        };
        let start = off.saturating_add(RECORD_HEADER_LEN);
        let end = start.saturating_add(usize::from(u16::from_be_bytes([hi, lo])));
        message.extend_from_slice(buf.get(start..end).ok_or(BUG)?);
        off = end;
    }
    Ok(Cow::Owned(message))
}

/// A cursor over a byte slice whose reads fail with a `Malformed` reason.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(ClientHelloError::Malformed(what))?;
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ClientHelloError> {
        let (&b, tail) = self
            .rest
            .split_first()
            .ok_or(ClientHelloError::Malformed(what))?;
        self.rest = tail;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ClientHelloError> {
        match *self.bytes(2, what)? {
            [hi, lo] => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(ClientHelloError::Malformed(what)),
        }
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let n = self.u8(what)?;
        self.bytes(usize::from(n), what)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], ClientHelloError> {
        let n = self.u16(what)?;
        self.bytes(usize::from(n), what)
    }
}

/// Parses a ClientHello body (after the 4-byte handshake header).
fn parse_body(body: &[u8]) -> Result<ClientHello, ClientHelloError> {
    use ClientHelloError::Malformed;
    let mut r = Reader::new(body);
    let legacy_version = r.u16("truncated legacy_version")?;
    if legacy_version >> 8 != 3 {
        return Err(Malformed("legacy_version is not 3.x"));
    }
    r.bytes(32, "truncated random")?;
    if r.vec8("truncated legacy_session_id")?.len() > 32 {
        return Err(Malformed("legacy_session_id longer than 32 bytes"));
    }
    let suites = r.vec16("truncated cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(Malformed("cipher_suites length is zero or odd"));
    }
    if r.vec8("truncated legacy_compression_methods")?.is_empty() {
        return Err(Malformed("no compression methods"));
    }
    let mut hello = ClientHello {
        server_name: None,
        alpn: Vec::new(),
        legacy_version,
        supported_versions: false,
        record_bytes: 0,
    };
    if r.is_empty() {
        // A TLS 1.2 ClientHello may end here: no extensions block at all.
        return Ok(hello);
    }
    let extensions = r.vec16("truncated extensions")?;
    if !r.is_empty() {
        return Err(Malformed("bytes after the extensions"));
    }
    parse_extensions(extensions, &mut hello)?;
    Ok(hello)
}

fn parse_extensions(extensions: &[u8], hello: &mut ClientHello) -> Result<(), ClientHelloError> {
    use ClientHelloError::Malformed;
    // One bit per extension type: duplicates are an error (RFC 8446 §4.2).
    let mut seen = [0u64; 1024];
    let mut r = Reader::new(extensions);
    let mut after_psk = false;
    while !r.is_empty() {
        if after_psk {
            return Err(Malformed("pre_shared_key is not the last extension"));
        }
        let ty = r.u16("truncated extension header")?;
        let data = r.vec16("truncated extension data")?;
        let word = seen
            .get_mut(usize::from(ty >> 6))
            .ok_or(Malformed("extension type out of range"))?;
        let bit = 1u64 << (ty & 63);
        if *word & bit != 0 {
            return Err(Malformed("duplicate extension"));
        }
        *word |= bit;
        match ty {
            EXT_SERVER_NAME => hello.server_name = parse_server_name(data)?,
            EXT_ALPN => hello.alpn = parse_alpn(data)?,
            EXT_SUPPORTED_VERSIONS => {
                check_supported_versions(data)?;
                hello.supported_versions = true;
            }
            EXT_PRE_SHARED_KEY => after_psk = true,
            _ => {}
        }
    }
    Ok(())
}

/// RFC 6066 §3: ServerNameList; at most one host_name.
fn parse_server_name(data: &[u8]) -> Result<Option<String>, ClientHelloError> {
    use ClientHelloError::Malformed;
    let mut r = Reader::new(data);
    let list = r.vec16("truncated server_name list")?;
    if !r.is_empty() {
        return Err(Malformed("bytes after the server_name list"));
    }
    if list.is_empty() {
        return Err(Malformed("empty server_name list"));
    }
    let mut r = Reader::new(list);
    let mut host = None;
    while !r.is_empty() {
        let name_type = r.u8("truncated server_name entry")?;
        let name = r.vec16("truncated server_name entry")?;
        if name_type == SNI_HOST_NAME {
            if host.is_some() {
                return Err(Malformed("more than one host_name in server_name"));
            }
            host = Some(name);
        }
    }
    host.map(validate_host_name).transpose()
}

/// A DNS host name: labels of 1–63 letters, digits, `-` or `_`, at most 253 bytes
/// without the optional trailing dot. Returned lower-cased without the trailing dot.
fn validate_host_name(name: &[u8]) -> Result<String, ClientHelloError> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return Err(ClientHelloError::BadServerName);
    }
    let label_ok = |label: &[u8]| {
        (1..=MAX_LABEL_LEN).contains(&label.len())
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split(|&b| b == b'.').all(label_ok) {
        return Err(ClientHelloError::BadServerName);
    }
    Ok(name
        .iter()
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect())
}

/// RFC 7301 §3.1: ProtocolNameList of non-empty names.
fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, ClientHelloError> {
    use ClientHelloError::Malformed;
    let mut r = Reader::new(data);
    let list = r.vec16("truncated ALPN list")?;
    if !r.is_empty() {
        return Err(Malformed("bytes after the ALPN list"));
    }
    if list.is_empty() {
        return Err(Malformed("empty ALPN list"));
    }
    let mut r = Reader::new(list);
    let mut protocols = Vec::new();
    while !r.is_empty() {
        let name = r.vec8("truncated ALPN protocol name")?;
        if name.is_empty() {
            return Err(Malformed("empty ALPN protocol name"));
        }
        if protocols.len() == MAX_ALPN_PROTOCOLS {
            return Err(Malformed("more than 16 ALPN protocols"));
        }
        protocols.push(name.to_vec());
    }
    Ok(protocols)
}

/// RFC 8446 §4.2.1 (ClientHello form): ProtocolVersion versions<2..254>.
fn check_supported_versions(data: &[u8]) -> Result<(), ClientHelloError> {
    let mut r = Reader::new(data);
    let versions = r.vec8("truncated supported_versions")?;
    if !r.is_empty() {
        return Err(ClientHelloError::Malformed(
            "bytes after the supported_versions list",
        ));
    }
    if versions.is_empty() || versions.len() % 2 != 0 {
        return Err(ClientHelloError::Malformed(
            "supported_versions length is zero or odd",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
