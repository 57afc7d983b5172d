use super::*;
use proptest::prelude::*;
use std::net::SocketAddrV6;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proxied(src: &str, dst: &str) -> ProxyHeader {
    ProxyHeader {
        command: Command::Proxy,
        source: Some(addr(src)),
        destination: Some(addr(dst)),
    }
}

fn complete(header: ProxyHeader, consumed: usize) -> Result<Parse, ProxyError> {
    Ok(Parse::Complete { header, consumed })
}

fn malformed(reason: &'static str) -> Result<Parse, ProxyError> {
    Err(ProxyError::Malformed(reason))
}

/// Every strict prefix of `bytes` is `Incomplete`.
fn assert_prefixes_incomplete(bytes: &[u8], accept: Accept) {
    for cut in 0..bytes.len() {
        assert_eq!(
            parse(&bytes[..cut], accept),
            Ok(Parse::Incomplete),
            "{:?} cut at {cut}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// ---------------------------------------------------------------- v1

#[test]
fn v1_examples_from_the_specification() {
    let cases: &[(&[u8], ProxyHeader)] = &[
        (
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            proxied("192.168.0.1:56324", "192.168.0.11:443"),
        ),
        (
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
            proxied(
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
            ),
        ),
        (
            b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 1\r\n",
            proxied("[2001:db8::1]:0", "[::ffff:10.0.0.1]:1"),
        ),
        (b"PROXY UNKNOWN\r\n", ProxyHeader::without_address(Command::Proxy)),
        (
            b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
            ProxyHeader::without_address(Command::Proxy),
        ),
        (b"PROXY UNKNOWN \xff\x00 anything\r\n", ProxyHeader::without_address(Command::Proxy)),
    ];
    for (bytes, header) in cases {
        let mut stream = bytes.to_vec();
        stream.extend_from_slice(b"\x16\x03\x01 and the rest of the stream\r\n");
        for accept in [Accept::V1, Accept::Any] {
            assert_eq!(parse(&stream, accept), complete(*header, bytes.len()));
            assert_prefixes_incomplete(bytes, accept);
        }
        assert_eq!(
            parse(bytes, Accept::V2),
            Err(ProxyError::VersionNotAccepted)
        );
    }
}

#[test]
fn v1_longest_header_is_107_bytes() {
    // The specification's worst case, padded with the longest UNKNOWN tail.
    let mut longest = b"PROXY UNKNOWN ".to_vec();
    longest.resize(V1_MAX_LEN - 2, b'x');
    longest.extend_from_slice(b"\r\n");
    assert_eq!(longest.len(), V1_MAX_LEN);
    assert_eq!(
        parse(&longest, Accept::V1),
        complete(ProxyHeader::without_address(Command::Proxy), V1_MAX_LEN)
    );
    // One more byte and no CRLF within 107 bytes: rejected without waiting for more.
    let mut too_long = longest[..V1_MAX_LEN - 2].to_vec();
    too_long.extend_from_slice(b"xx");
    assert_eq!(parse(&too_long, Accept::V1), Err(ProxyError::TooLarge));
    assert_eq!(
        parse(&too_long[..V1_MAX_LEN - 1], Accept::V1),
        Ok(Parse::Incomplete)
    );
}

#[test]
fn v1_rejects_what_the_specification_forbids() {
    let cases: &[(&[u8], Result<Parse, ProxyError>)] = &[
        (
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            malformed("v1 TCP4 address is not dotted-quad IPv4"),
        ),
        (
            b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            malformed("v1 fields after the destination port"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            malformed("v1 fields after the destination port"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            malformed("v1 destination port missing"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
            malformed("v1 source port missing"),
        ),
        (
            b"PROXY TCP4 1.2.3.4\r\n",
            malformed("v1 destination address missing"),
        ),
        (b"PROXY TCP4\r\n", malformed("v1 source address missing")),
        (
            b"PROXY \r\n",
            malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            b"PROXY UNKNOWNX\r\n",
            malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            malformed("v1 TCP4 address is not dotted-quad IPv4"),
        ),
        (
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            malformed("v1 TCP6 address is not IPv6"),
        ),
        (
            b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
            malformed("v1 TCP6 address is not IPv6"),
        ),
        (
            b"PROXY TCP6 [::1] ::1 1 2\r\n",
            malformed("v1 TCP6 address is not IPv6"),
        ),
        (
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            malformed("v1 TCP4 address is not dotted-quad IPv4"),
        ),
        (
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
            malformed("v1 TCP4 address is not dotted-quad IPv4"),
        ),
        (
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            malformed("v1 TCP4 address is not dotted-quad IPv4"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n",
            malformed("v1 address is not ASCII"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n",
            malformed("v1 port is not 0-65535 without leading zeros"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            malformed("v1 LF not preceded by CR"),
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
            malformed("v1 CR not followed by LF"),
        ),
        (
            b"PROXY TCP4 1.2.3.4\r 5.6",
            malformed("v1 CR not followed by LF"),
        ),
        (b"PROXY\r\n", Err(ProxyError::NotProxy)),
        (b"PROXZ", Err(ProxyError::NotProxy)),
        (b"proxy ", Err(ProxyError::NotProxy)),
        (b"GET / HTTP/1.1\r\n", Err(ProxyError::NotProxy)),
        (b"\x16\x03\x01\x02\x00", Err(ProxyError::NotProxy)),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            parse(bytes, Accept::V1),
            *want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 65535 0\r\n", Accept::V1),
        complete(proxied("1.2.3.4:65535", "5.6.7.8:0"), 36)
    );
}

#[test]
fn v1_encoder() {
    let mut out = Vec::new();
    encode_v1(addr("192.0.2.1:56324"), addr("198.51.100.7:443"), &mut out);
    assert_eq!(out, b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    out.clear();
    encode_v1(addr("[2001:db8::1]:1"), addr("[::1]:2"), &mut out);
    assert_eq!(out, b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n");
    out.clear();
    encode_v1(addr("192.0.2.1:1"), addr("[2001:db8::2]:2"), &mut out);
    assert_eq!(out, b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n");
    assert_eq!(
        parse(&out, Accept::V1),
        complete(
            proxied("[::ffff:192.0.2.1]:1", "[2001:db8::2]:2"),
            out.len()
        )
    );
    let widest = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from([0xffff; 8]), 65535, 0, 0));
    out.clear();
    encode_v1(widest, widest, &mut out);
    assert_eq!(out.len(), 104);
    assert_eq!(
        parse(&out, Accept::V1),
        complete(
            ProxyHeader {
                command: Command::Proxy,
                source: Some(widest),
                destination: Some(widest)
            },
            104
        )
    );
}

// ---------------------------------------------------------------- v2

fn v2(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(family);
    out.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
    out.extend_from_slice(block);
    out
}

const V4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb];

#[test]
fn v2_inet_and_inet6() {
    let want = proxied("192.0.2.1:56324", "198.51.100.7:443");
    for family in [0x11, 0x12] {
        let bytes = v2(0x21, family, &V4_BLOCK);
        assert_eq!(parse(&bytes, Accept::V2), complete(want, 28));
        assert_prefixes_incomplete(&bytes, Accept::V2);
    }
    let mut block6 = [0u8; 36];
    block6[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block6[16..32].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
    block6[32..].copy_from_slice(&[0, 80, 0x01, 0xbb]);
    let bytes = v2(0x21, 0x21, &block6);
    let want6 = proxied("[2001:db8::1]:80", "[::1]:443");
    assert_eq!(parse(&bytes, Accept::Any), complete(want6, 52));
    assert_prefixes_incomplete(&bytes, Accept::Any);
    // The stream proper follows the header.
    let mut stream = bytes.clone();
    stream.extend_from_slice(b"\x16\x03\x01");
    assert_eq!(parse(&stream, Accept::V2), complete(want6, 52));
    assert_eq!(
        parse(&bytes, Accept::V1),
        Err(ProxyError::VersionNotAccepted)
    );
    assert_eq!(
        parse(&bytes[..1], Accept::V1),
        Err(ProxyError::VersionNotAccepted)
    );
}

#[test]
fn v2_tlvs_are_walked() {
    let mut block = V4_BLOCK.to_vec();
    // PP2_TYPE_ALPN "h2", PP2_TYPE_NOOP empty, PP2_TYPE_AUTHORITY "example.com".
    block.extend_from_slice(&[0x01, 0, 2, b'h', b'2', 0x04, 0, 0, 0x02, 0, 11]);
    block.extend_from_slice(b"example.com");
    let bytes = v2(0x21, 0x11, &block);
    let want = proxied("192.0.2.1:56324", "198.51.100.7:443");
    assert_eq!(parse(&bytes, Accept::V2), complete(want, bytes.len()));
    assert_prefixes_incomplete(&bytes, Accept::V2);

    for (tail, reason) in [
        (&[0x01][..], "v2 truncated TLV header"),
        (&[0x01, 0], "v2 truncated TLV header"),
        (&[0x01, 0, 3, b'h', b'2'], "v2 TLV longer than the header"),
        (
            &[0x04, 0, 0, 0x01, 0xff, 0xff],
            "v2 TLV longer than the header",
        ),
    ] {
        let mut block = V4_BLOCK.to_vec();
        block.extend_from_slice(tail);
        assert_eq!(
            parse(&v2(0x21, 0x11, &block), Accept::V2),
            malformed(reason)
        );
    }
    // UNSPEC: the whole block is TLVs.
    assert_eq!(
        parse(&v2(0x21, 0x00, &[0x04, 0, 1]), Accept::V2),
        malformed("v2 TLV longer than the header")
    );
}

#[test]
fn v2_without_addresses() {
    let none = ProxyHeader::without_address(Command::Proxy);
    let local = ProxyHeader::without_address(Command::Local);
    // LOCAL: the block and its family are discarded.
    assert_eq!(parse(&v2(0x20, 0x00, &[]), Accept::V2), complete(local, 16));
    assert_eq!(
        parse(&v2(0x20, 0x11, &V4_BLOCK), Accept::V2),
        complete(local, 28)
    );
    assert_eq!(
        parse(&v2(0x20, 0xff, &[1, 2, 3]), Accept::V2),
        complete(local, 19)
    );
    assert_eq!(parse(&v2(0x21, 0x00, &[]), Accept::V2), complete(none, 16));
    assert_eq!(
        parse(&v2(0x21, 0x00, &[0x04, 0, 1, 0]), Accept::V2),
        complete(none, 20)
    );
    for family in [0x31, 0x32] {
        let mut block = vec![b'/'; 216];
        block.extend_from_slice(&[0x04, 0, 0]);
        assert_eq!(
            parse(&v2(0x21, family, &block), Accept::V2),
            complete(none, 235)
        );
        assert_eq!(
            parse(&v2(0x21, family, &block[..215]), Accept::V2),
            malformed("v2 length too short for the address family")
        );
    }
}

#[test]
fn v2_rejects_what_the_specification_forbids() {
    for (bytes, want) in [
        (v2(0x11, 0x11, &V4_BLOCK), malformed("v2 version is not 2")),
        (v2(0x31, 0x11, &V4_BLOCK), malformed("v2 version is not 2")),
        (
            v2(0x22, 0x11, &V4_BLOCK),
            malformed("v2 command is not LOCAL or PROXY"),
        ),
        (
            v2(0x2f, 0x11, &V4_BLOCK),
            malformed("v2 command is not LOCAL or PROXY"),
        ),
        (
            v2(0x21, 0x10, &V4_BLOCK),
            malformed("v2 address family or transport is invalid"),
        ),
        (
            v2(0x21, 0x13, &V4_BLOCK),
            malformed("v2 address family or transport is invalid"),
        ),
        (
            v2(0x21, 0x01, &V4_BLOCK),
            malformed("v2 address family or transport is invalid"),
        ),
        (
            v2(0x21, 0x41, &V4_BLOCK),
            malformed("v2 address family or transport is invalid"),
        ),
        (
            v2(0x21, 0x11, &V4_BLOCK[..11]),
            malformed("v2 length too short for the address family"),
        ),
        (
            v2(0x21, 0x21, &[0; 35]),
            malformed("v2 length too short for the address family"),
        ),
    ] {
        assert_eq!(parse(&bytes, Accept::V2), want, "{bytes:?}");
        // Each of these is decided from the fixed header, before the block arrives.
        if !matches!(want, Err(ProxyError::Malformed(r)) if r.contains("too short")) {
            assert_eq!(parse(&bytes[..14], Accept::V2), want);
        }
    }
    // A signature off by one byte is not a PROXY header at all.
    for i in 0..12 {
        let mut bytes = v2(0x21, 0x11, &V4_BLOCK);
        bytes[i] ^= 0x40;
        assert_eq!(
            parse(&bytes, Accept::Any),
            Err(ProxyError::NotProxy),
            "byte {i}"
        );
        assert_eq!(
            parse(&bytes[..=i], Accept::Any),
            Err(ProxyError::NotProxy),
            "byte {i}"
        );
    }
}

#[test]
fn v2_length_is_capped() {
    let block = vec![0x04; MAX_V2_LEN - V2_HEADER_LEN];
    let mut tlv_block = vec![0x04, 0x0f, 0xed];
    tlv_block.resize(block.len(), 0);
    assert_eq!(
        parse(&v2(0x21, 0x00, &tlv_block), Accept::V2),
        complete(ProxyHeader::without_address(Command::Proxy), MAX_V2_LEN)
    );
    let mut over = v2(0x21, 0x00, &block);
    over.push(0);
    let len = u16::try_from(MAX_V2_LEN - V2_HEADER_LEN + 1).unwrap();
    over[14..16].copy_from_slice(&len.to_be_bytes());
    // Decided from the 16-byte fixed header alone.
    assert_eq!(parse(&over[..16], Accept::V2), Err(ProxyError::TooLarge));
    assert_eq!(
        parse(&v2(0x21, 0x11, &[0; 0xffff]), Accept::V2),
        Err(ProxyError::TooLarge)
    );
}

#[test]
fn v2_encoders() {
    let mut out = Vec::new();
    encode_v2(addr("192.0.2.1:56324"), addr("198.51.100.7:443"), &mut out);
    assert_eq!(out, v2(0x21, 0x11, &V4_BLOCK));
    out.clear();
    encode_v2(addr("192.0.2.1:1"), addr("[2001:db8::2]:2"), &mut out);
    assert_eq!(&out[12..16], &[0x21, 0x21, 0, 36]);
    assert_eq!(
        parse(&out, Accept::V2),
        complete(proxied("[::ffff:192.0.2.1]:1", "[2001:db8::2]:2"), 52)
    );
    out.clear();
    encode_v2_local(&mut out);
    assert_eq!(out, v2(0x20, 0x00, &[]));
    out.clear();
    encode(
        &ProxyHeader::without_address(Command::Proxy),
        Version::V2,
        &mut out,
    );
    assert_eq!(out, v2(0x21, 0x00, &[]));
    out.clear();
    encode(
        &ProxyHeader::without_address(Command::Local),
        Version::V1,
        &mut out,
    );
    assert_eq!(out, b"PROXY UNKNOWN\r\n");
}

#[test]
fn accept_and_not_proxy() {
    assert_eq!(parse(b"", Accept::Any), Ok(Parse::Incomplete));
    assert_eq!(parse(b"PRO", Accept::Any), Ok(Parse::Incomplete));
    assert_eq!(
        parse(b"PRO", Accept::V2),
        Err(ProxyError::VersionNotAccepted)
    );
    assert_eq!(parse(b"\r\n", Accept::Any), Ok(Parse::Incomplete));
    assert_eq!(
        parse(b"\r\n\r\n\x00\r\nQUI", Accept::V2),
        Ok(Parse::Incomplete)
    );
    assert_eq!(
        parse(b"\x16\x03\x01", Accept::Any),
        Err(ProxyError::NotProxy)
    );
    assert_eq!(parse(b"\r\r", Accept::V1), Err(ProxyError::NotProxy));
    let e: crate::Error = ProxyError::TooLarge.into();
    assert_eq!(e.to_string(), "PROXY protocol header too long");
}

// ---------------------------------------------------------------- properties

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(Ipv4Addr::from(ip).into(), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(Ipv6Addr::from(ip).into(), port)),
        // IPv4-mapped and compressible IPv6 forms.
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(
            Ipv4Addr::from(ip).to_ipv6_mapped().into(),
            port
        )),
        (any::<u16>(), any::<u16>()).prop_map(|(last, port)| SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into(),
            port
        )),
    ]
}

/// What a receiver sees for `addr` sent beside `other`: both in one family.
fn as_sent(addr: SocketAddr, other: SocketAddr) -> SocketAddr {
    match (addr.ip(), other.ip()) {
        (IpAddr::V4(ip), IpAddr::V6(_)) => SocketAddr::new(ip.to_ipv6_mapped().into(), addr.port()),
        _ => addr,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_parse_round_trip(
        src in socket_addr(),
        dst in socket_addr(),
        v1 in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut out = Vec::new();
        let (version, accept) = if v1 {
            encode_v1(src, dst, &mut out);
            (Version::V1, Accept::V1)
        } else {
            encode_v2(src, dst, &mut out);
            (Version::V2, Accept::V2)
        };
        let header = proxied(&as_sent(src, dst).to_string(), &as_sent(dst, src).to_string());
        let n = out.len();
        prop_assert!(!v1 || n <= V1_MAX_LEN);
        // Any prefix waits; the header plus whatever follows parses to the same thing.
        prop_assert_eq!(parse(&out[..cut.index(n)], accept), Ok(Parse::Incomplete));
        out.extend_from_slice(&rest);
        prop_assert_eq!(parse(&out, accept), complete(header, n));
        prop_assert_eq!(parse(&out, Accept::Any), complete(header, n));
        let mut again = Vec::new();
        encode(&header, version, &mut again);
        prop_assert_eq!(&again[..], &out[..n]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        crate::fuzzing::proxy_v1(&data);
        crate::fuzzing::proxy_v2(&data);
    }

    #[test]
    fn arbitrary_bytes_behind_a_signature(
        v1 in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut buf = if v1 { b"PROXY ".to_vec() } else { V2_SIGNATURE.to_vec() };
        buf.extend_from_slice(&data);
        crate::fuzzing::proxy_v1(&buf);
        crate::fuzzing::proxy_v2(&buf);
    }

    #[test]
    fn v1_text_fields_never_panic(
        proto in prop_oneof![Just("TCP4".to_owned()), Just("TCP6".to_owned()), Just("UNKNOWN".to_owned()), "[A-Z0-9]{0,8}"],
        fields in proptest::collection::vec("[0-9a-fA-F:.]{0,40}", 0..6),
    ) {
        let line = format!("PROXY {proto} {}\r\n", fields.join(" "));
        crate::fuzzing::proxy_v1(line.as_bytes());
    }
}
