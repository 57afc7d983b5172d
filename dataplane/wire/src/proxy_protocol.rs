//! PROXY protocol v1 (text) and v2 (binary), parsed and encoded per the HAProxy
//! specification (proxy-protocol.txt, 2.9).
//!
//! [`parse`] is incremental and stateless: pass every byte received so far from the start
//! of the connection; it answers [`Parse::Incomplete`] until the header is complete. It
//! never allocates and never looks past [`V1_MAX_LEN`] (v1) or [`MAX_V2_LEN`] (v2) bytes.
//!
//! A header with no usable address (v1 `UNKNOWN`, v2 `LOCAL`, v2 `AF_UNSPEC` or
//! `AF_UNIX`) has `source` and `destination` set to `None`: the caller then uses the
//! connection's real endpoints. TLVs are walked and their lengths checked, not interpreted.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 header, `PROXY` through CRLF.
pub const V1_MAX_LEN: usize = 107;
/// The 12-byte signature that starts every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_HEADER_LEN: usize = 16;
/// The longest v2 header accepted (fixed part, addresses and TLVs). The protocol allows
/// 16 + 65535; nothing we accept needs more than this.
pub const MAX_V2_LEN: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_VERSION: u8 = 0x2;
const V2_CMD_LOCAL: u8 = 0x0;
const V2_CMD_PROXY: u8 = 0x1;
const V2_FAM_UNSPEC: u8 = 0x00;
const V2_FAM_TCP4: u8 = 0x11;
const V2_FAM_UDP4: u8 = 0x12;
const V2_FAM_TCP6: u8 = 0x21;
const V2_FAM_UDP6: u8 = 0x22;
const V2_FAM_UNIX_STREAM: u8 = 0x31;
const V2_FAM_UNIX_DGRAM: u8 = 0x32;
const V2_ADDR_LEN_INET: u16 = 12;
const V2_ADDR_LEN_INET6: u16 = 36;
const V2_ADDR_LEN_UNIX: usize = 216;

/// Which PROXY protocol versions a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accept {
    /// The text form only.
    V1,
    /// The binary form only.
    V2,
    /// Either, told apart by the first byte.
    Any,
}

/// A PROXY protocol version, for [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The text form.
    V1,
    /// The binary form.
    V2,
}

/// The v2 command (v1 headers are always [`Command::Proxy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The connection was made by the proxy itself (e.g. a health check): use the real
    /// connection endpoints.
    Local,
    /// The connection is relayed on behalf of another node.
    Proxy,
}

/// A parsed PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyHeader {
    /// LOCAL or PROXY.
    pub command: Command,
    /// The original client; `None` when the header carries no usable address.
    pub source: Option<SocketAddr>,
    /// The address the client connected to; `None` exactly when `source` is.
    pub destination: Option<SocketAddr>,
}

impl ProxyHeader {
    /// A header that carries no address (`LOCAL`, `UNKNOWN`, `AF_UNSPEC`, `AF_UNIX`).
    const fn without_address(command: Command) -> Self {
        Self {
            command,
            source: None,
            destination: None,
        }
    }
}

/// The result of [`parse`] when nothing is wrong so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The header has not fully arrived: call again with more bytes.
    Incomplete,
    /// A whole header: the stream proper starts `consumed` bytes in.
    Complete {
        /// The header.
        header: ProxyHeader,
        /// The header's length in bytes.
        consumed: usize,
    },
}

/// Why a connection's first bytes are not an acceptable PROXY protocol header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The bytes start with neither the v1 nor the v2 signature.
    #[error("no PROXY protocol header")]
    NotProxy,
    /// A header of a version this listener does not accept.
    #[error("PROXY protocol version not accepted here")]
    VersionNotAccepted,
    /// Longer than [`V1_MAX_LEN`] (v1) or [`MAX_V2_LEN`] (v2).
    #[error("PROXY protocol header too long")]
    TooLarge,
    /// The header breaks the specification; the reason names the rule.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
}

/// Parses the PROXY protocol header at the start of `buf`, the bytes received so far.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Parse, ProxyError> {
    let Some(&first) = buf.first() else {
        return Ok(Parse::Incomplete);
    };
    let (signature, version): (&[u8], _) = match first {
        b'P' => (V1_PREFIX, Version::V1),
        b'\r' => (&V2_SIGNATURE, Version::V2),
        _ => return Err(ProxyError::NotProxy),
    };
    if !signature.starts_with(buf.get(..signature.len()).unwrap_or(buf)) {
        return Err(ProxyError::NotProxy);
    }
    match (version, accept) {
        (Version::V1, Accept::V1 | Accept::Any) => parse_v1(buf),
        (Version::V2, Accept::V2 | Accept::Any) => parse_v2(buf),
        _ => Err(ProxyError::VersionNotAccepted),
    }
}

/// v1: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN[ anything]\r\n`.
/// `buf` starts with (a prefix of) `PROXY `.
fn parse_v1(buf: &[u8]) -> Result<Parse, ProxyError> {
    use ProxyError::Malformed;
    let window = buf.get(..V1_MAX_LEN).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if window.windows(2).any(|w| w.first() == Some(&b'\r')) {
            return Err(Malformed("v1 CR not followed by LF"));
        }
        return if window.len() == V1_MAX_LEN {
            Err(ProxyError::TooLarge)
        } else {
            Ok(Parse::Incomplete)
        };
    };
    let Some(line) = window
        .get(..lf)
        .and_then(|l| l.strip_suffix(b"\r"))
        .and_then(|l| l.strip_prefix(V1_PREFIX))
    else {
        return Err(Malformed("v1 LF not preceded by CR"));
    };
    if line.contains(&b'\r') {
        return Err(Malformed("v1 CR not followed by LF"));
    }
    let header = parse_v1_line(line)?;
    Ok(Parse::Complete {
        header,
        consumed: lf + 1,
    })
}

/// The v1 fields after `PROXY `, without the CRLF.
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    use ProxyError::Malformed;
    let mut fields = line.split(|&b| b == b' ');
    let inet6 = match fields.next() {
        // The receiver ignores everything after UNKNOWN up to the CRLF.
        Some(b"UNKNOWN") => return Ok(ProxyHeader::without_address(Command::Proxy)),
        Some(b"TCP4") => false,
        Some(b"TCP6") => true,
        _ => return Err(Malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let mut next = |missing| fields.next().ok_or(Malformed(missing));
    let src = v1_address(next("v1 source address missing")?, inet6)?;
    let dst = v1_address(next("v1 destination address missing")?, inet6)?;
    let sport = v1_port(next("v1 source port missing")?)?;
    let dport = v1_port(next("v1 destination port missing")?)?;
    if fields.next().is_some() {
        return Err(Malformed("v1 fields after the destination port"));
    }
    Ok(ProxyHeader {
        command: Command::Proxy,
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    })
}

fn v1_address(field: &[u8], inet6: bool) -> Result<IpAddr, ProxyError> {
    let text =
        std::str::from_utf8(field).map_err(|_| ProxyError::Malformed("v1 address is not ASCII"))?;
    if inet6 {
        text.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| ProxyError::Malformed("v1 TCP6 address is not IPv6"))
    } else {
        // std rejects octets with leading zeros, as the specification wants.
        text.parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| ProxyError::Malformed("v1 TCP4 address is not dotted-quad IPv4"))
    }
}

/// A decimal port 0–65535 without leading zeros.
fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    let bad = ProxyError::Malformed("v1 port is not 0-65535 without leading zeros");
    if field.is_empty()
        || field.len() > 5
        || !field.iter().all(u8::is_ascii_digit)
        || (field.len() > 1 && field.first() == Some(&b'0'))
    {
        return Err(bad);
    }
    let value = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| bad)
}

/// v2: `buf` starts with (a prefix of) the signature.
fn parse_v2(buf: &[u8]) -> Result<Parse, ProxyError> {
    use ProxyError::Malformed;
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(Parse::Incomplete);
    };
    if ver_cmd >> 4 != V2_VERSION {
        return Err(Malformed("v2 version is not 2"));
    }
    let command = match ver_cmd & 0x0f {
        V2_CMD_LOCAL => Command::Local,
        V2_CMD_PROXY => Command::Proxy,
        _ => return Err(Malformed("v2 command is not LOCAL or PROXY")),
    };
    let Some(&family) = buf.get(13) else {
        return Ok(Parse::Incomplete);
    };
    // LOCAL: the family is ignored along with the rest of the block.
    let family = match (command, family) {
        (Command::Local, _) | (Command::Proxy, V2_FAM_UNSPEC) => V2Family::None(0),
        (Command::Proxy, V2_FAM_TCP4 | V2_FAM_UDP4) => V2Family::Inet,
        (Command::Proxy, V2_FAM_TCP6 | V2_FAM_UDP6) => V2Family::Inet6,
        (Command::Proxy, V2_FAM_UNIX_STREAM | V2_FAM_UNIX_DGRAM) => {
            V2Family::None(V2_ADDR_LEN_UNIX)
        }
        _ => return Err(Malformed("v2 address family or transport is invalid")),
    };
    let Some(&[hi, lo]) = buf.get(14..V2_HEADER_LEN) else {
        return Ok(Parse::Incomplete);
    };
    let total = V2_HEADER_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    if total > MAX_V2_LEN {
        return Err(ProxyError::TooLarge);
    }
    let Some(block) = buf.get(V2_HEADER_LEN..total) else {
        return Ok(Parse::Incomplete);
    };
    if command == Command::Local {
        return Ok(Parse::Complete {
            header: ProxyHeader::without_address(Command::Local),
            consumed: total,
        });
    }
    let too_short = Malformed("v2 length too short for the address family");
    let (addresses, tlvs) = match family {
        V2Family::None(len) => (None, block.get(len..).ok_or(too_short)?),
        V2Family::Inet => {
            let ([s, d], sp, dp, tlvs) = v2_address_block::<4>(block).ok_or(too_short)?;
            let (s, d) = (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into());
            (Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))), tlvs)
        }
        V2Family::Inet6 => {
            let ([s, d], sp, dp, tlvs) = v2_address_block::<16>(block).ok_or(too_short)?;
            let (s, d) = (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into());
            (Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))), tlvs)
        }
    };
    check_tlvs(tlvs)?;
    Ok(Parse::Complete {
        header: ProxyHeader {
            command: Command::Proxy,
            source: addresses.map(|(s, _)| s),
            destination: addresses.map(|(_, d)| d),
        },
        consumed: total,
    })
}

/// What the address block of a v2 PROXY header holds.
enum V2Family {
    /// No usable address; this many bytes of block to skip (AF_UNSPEC 0, AF_UNIX 216).
    None(usize),
    /// Two IPv4 addresses and two ports (12 bytes).
    Inet,
    /// Two IPv6 addresses and two ports (36 bytes).
    Inet6,
}

/// Source and destination addresses of `N` bytes, the two ports, and the rest (TLVs).
#[allow(clippy::type_complexity)]
fn v2_address_block<const N: usize>(block: &[u8]) -> Option<([[u8; N]; 2], u16, u16, &[u8])> {
    let (src, rest) = block.split_first_chunk::<N>()?;
    let (dst, rest) = rest.split_first_chunk::<N>()?;
    let (sport, rest) = rest.split_first_chunk::<2>()?;
    let (dport, rest) = rest.split_first_chunk::<2>()?;
    Some((
        [*src, *dst],
        u16::from_be_bytes(*sport),
        u16::from_be_bytes(*dport),
        rest,
    ))
}

/// Walks the TLVs after the addresses: each is type (1), length (2), value.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    while !tlvs.is_empty() {
        let Some((&[_, hi, lo], rest)) = tlvs.split_first_chunk::<3>() else {
            return Err(ProxyError::Malformed("v2 truncated TLV header"));
        };
        tlvs = rest
            .get(usize::from(u16::from_be_bytes([hi, lo]))..)
            .ok_or(ProxyError::Malformed("v2 TLV longer than the header"))?;
    }
    Ok(())
}

/// Both addresses in one family: IPv4 becomes IPv4-mapped IPv6 when the other is IPv6.
fn same_family(src: IpAddr, dst: IpAddr) -> (IpAddr, IpAddr) {
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => (src, dst),
        _ => (to_v6(src).into(), to_v6(dst).into()),
    }
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Appends a v1 header for a connection from `src` to `dst` (`TCP6` with IPv4-mapped
/// addresses when the families differ).
pub fn encode_v1(src: SocketAddr, dst: SocketAddr, out: &mut Vec<u8>) {
    let (s, d) = same_family(src.ip(), dst.ip());
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "PROXY {proto} {s} {d} {} {}\r\n",
        src.port(),
        dst.port()
    );
}

/// Appends a v2 `PROXY` header (STREAM) for a connection from `src` to `dst`
/// (`AF_INET6` with IPv4-mapped addresses when the families differ).
pub fn encode_v2(src: SocketAddr, dst: SocketAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(V2_VERSION << 4 | V2_CMD_PROXY);
    match same_family(src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(V2_FAM_TCP4);
            out.extend_from_slice(&V2_ADDR_LEN_INET.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(V2_FAM_TCP6);
            out.extend_from_slice(&V2_ADDR_LEN_INET6.to_be_bytes());
            out.extend_from_slice(&to_v6(s).octets());
            out.extend_from_slice(&to_v6(d).octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
}

/// Appends a v2 `LOCAL` header (no address: the receiver uses the real endpoints).
pub fn encode_v2_local(out: &mut Vec<u8>) {
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(V2_VERSION << 4 | V2_CMD_LOCAL);
    out.push(V2_FAM_UNSPEC);
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// Appends `header` in the given version. A header without addresses becomes v1
/// `UNKNOWN`, v2 `LOCAL`, or v2 `PROXY` with `AF_UNSPEC`; v1 has no LOCAL and writes
/// `UNKNOWN` for it.
pub fn encode(header: &ProxyHeader, version: Version, out: &mut Vec<u8>) {
    match (version, header.command, header.source, header.destination) {
        (Version::V1, _, Some(src), Some(dst)) => encode_v1(src, dst, out),
        (Version::V1, _, _, _) => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
        (Version::V2, Command::Local, _, _) => encode_v2_local(out),
        (Version::V2, Command::Proxy, Some(src), Some(dst)) => encode_v2(src, dst, out),
        (Version::V2, Command::Proxy, _, _) => {
            out.extend_from_slice(&V2_SIGNATURE);
            out.push(V2_VERSION << 4 | V2_CMD_PROXY);
            out.push(V2_FAM_UNSPEC);
            out.extend_from_slice(&0u16.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests;
