use super::*;
use proptest::prelude::*;

// ---------------------------------------------------------------- fixtures

/// A ClientHello captured from a real client (see tests/fixtures/README.md).
struct Fixture {
    name: &'static str,
    bytes: &'static [u8],
    server_name: Option<&'static str>,
    alpn: &'static [&'static [u8]],
    supported_versions: bool,
    records: usize,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "openssl_tls13_sni_alpn",
        bytes: include_bytes!("../../tests/fixtures/openssl_tls13_sni_alpn.bin"),
        server_name: Some("example.com"),
        alpn: &[b"h2", b"http/1.1"],
        supported_versions: true,
        records: 1,
    },
    Fixture {
        name: "openssl_tls12_only_sni",
        bytes: include_bytes!("../../tests/fixtures/openssl_tls12_only_sni.bin"),
        server_name: Some("www.example.net"),
        alpn: &[],
        supported_versions: false,
        records: 1,
    },
    Fixture {
        name: "openssl_no_sni",
        bytes: include_bytes!("../../tests/fixtures/openssl_no_sni.bin"),
        server_name: None,
        alpn: &[b"http/1.1"],
        supported_versions: true,
        records: 1,
    },
    Fixture {
        name: "curl_tls13_sni_alpn",
        bytes: include_bytes!("../../tests/fixtures/curl_tls13_sni_alpn.bin"),
        server_name: Some("api.example.com"),
        alpn: &[b"h2", b"http/1.1"],
        supported_versions: true,
        records: 1,
    },
    Fixture {
        name: "openssl_ffdhe8192_3_records",
        bytes: include_bytes!("../../tests/fixtures/openssl_ffdhe8192_3_records.bin"),
        server_name: Some("big.example.org"),
        alpn: &[b"h2"],
        supported_versions: true,
        records: 3,
    },
    Fixture {
        name: "rustls_x25519mlkem768",
        bytes: include_bytes!("../../tests/fixtures/rustls_x25519mlkem768.bin"),
        server_name: Some("origin-01.edge.example.com"),
        alpn: &[b"h2", b"http/1.1", b"http/1.0", b"acme-tls/1"],
        supported_versions: true,
        records: 1,
    },
];

fn expected(f: &Fixture, record_bytes: usize) -> ClientHello {
    ClientHello {
        server_name: f.server_name.map(str::to_owned),
        alpn: f.alpn.iter().map(|p| p.to_vec()).collect(),
        legacy_version: 0x0303,
        supported_versions: f.supported_versions,
        record_bytes,
    }
}

fn complete(buf: &[u8]) -> ClientHello {
    match parse(buf, DEFAULT_MAX_LEN) {
        Ok(Parse::Complete(hello)) => hello,
        other => panic!("expected a complete ClientHello, got {other:?}"),
    }
}

/// The handshake message carried by `records` (headers stripped, fragments joined).
fn handshake_message(records: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = records;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        out.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    out
}

/// `message` re-cut into handshake records of the given fragment sizes (cycled).
fn fragment(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for (chunk_no, chunk) in chunks(message, sizes).enumerate() {
        let version: &[u8] = if chunk_no == 0 { &[3, 1] } else { &[3, 3] };
        out.push(0x16);
        out.extend_from_slice(version);
        out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn chunks<'a>(mut data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut sizes = sizes.iter().cycle();
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let n = (*sizes.next()?).clamp(1, data.len());
        let (head, tail) = data.split_at(n);
        data = tail;
        Some(head)
    })
}

#[test]
fn fixtures_parse_whole() {
    for f in FIXTURES {
        assert_eq!(complete(f.bytes), expected(f, f.bytes.len()), "{}", f.name);
        let mut rest = f.bytes;
        let mut records = 0;
        while let [_, _, _, hi, lo, ..] = *rest {
            rest = &rest[5 + usize::from(u16::from_be_bytes([hi, lo]))..];
            records += 1;
        }
        assert_eq!(records, f.records, "{}", f.name);
    }
    let big = FIXTURES.iter().map(|f| f.bytes.len()).max().unwrap();
    assert!(
        big > 1500,
        "keep a ClientHello larger than one Ethernet MTU"
    );
}

#[test]
fn fixtures_every_prefix_is_incomplete() {
    for f in FIXTURES {
        for cut in 0..f.bytes.len() {
            assert_eq!(
                parse(&f.bytes[..cut], DEFAULT_MAX_LEN),
                Ok(Parse::Incomplete),
                "{} cut at {cut}",
                f.name
            );
        }
    }
}

#[test]
fn fixtures_fed_in_segments_complete_exactly_once() {
    for f in FIXTURES {
        for segment in [1, 2, 7, 100, 1460] {
            let mut received = Vec::new();
            let mut result = None;
            for chunk in f.bytes.chunks(segment) {
                assert_eq!(result, None, "{} completed before the end", f.name);
                received.extend_from_slice(chunk);
                if let Parse::Complete(hello) = parse(&received, DEFAULT_MAX_LEN).unwrap() {
                    result = Some(hello);
                }
            }
            assert_eq!(result, Some(expected(f, f.bytes.len())), "{}", f.name);
        }
    }
}

#[test]
fn fixtures_refragmented_into_small_records() {
    for f in FIXTURES {
        let message = handshake_message(f.bytes);
        for sizes in [
            &[1][..],
            &[2],
            &[3],
            &[5],
            &[64],
            &[512],
            &[16384],
            &[1, 700, 3],
        ] {
            let records = fragment(&message, sizes);
            let want = expected(f, records.len());
            assert_eq!(complete(&records), want, "{} in {sizes:?} records", f.name);
            for cut in 0..records.len() {
                assert_eq!(
                    parse(&records[..cut], DEFAULT_MAX_LEN),
                    Ok(Parse::Incomplete),
                    "{} in {sizes:?} records, cut at {cut}",
                    f.name
                );
            }
        }
    }
}

#[test]
fn bytes_after_the_hello_are_not_part_of_it() {
    for f in FIXTURES {
        let mut stream = f.bytes.to_vec();
        // change_cipher_spec, then application data (early data).
        stream.extend_from_slice(&[0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 2, 0xaa, 0xbb]);
        assert_eq!(complete(&stream), expected(f, f.bytes.len()), "{}", f.name);
    }
}

#[test]
fn max_len_bounds_the_records() {
    for f in FIXTURES {
        let n = f.bytes.len();
        assert_eq!(complete(f.bytes).record_bytes, n);
        assert!(matches!(parse(f.bytes, n), Ok(Parse::Complete(_))));
        assert_eq!(
            parse(f.bytes, n - 1),
            Err(ClientHelloError::TooLarge),
            "{}",
            f.name
        );
    }
}

#[test]
fn too_large_is_decided_from_the_lengths() {
    let f = &FIXTURES[0];
    let n = f.bytes.len();
    // The record header alone shows the record cannot fit.
    assert_eq!(parse(&f.bytes[..5], n - 1), Err(ClientHelloError::TooLarge));
    assert_eq!(parse(&f.bytes[..5], n), Ok(Parse::Incomplete));
    // 3 records of 512: the first record's header and the handshake length say at
    // least 517 + (1301 - 512) + 5 bytes; 1310 cannot hold that.
    let f = FIXTURES
        .iter()
        .find(|f| f.name == "openssl_ffdhe8192_3_records")
        .unwrap();
    assert_eq!(parse(&f.bytes[..9], 1310), Err(ClientHelloError::TooLarge));
    assert_eq!(parse(&f.bytes[..9], 1311), Ok(Parse::Incomplete));
    // The second header (two more records needed) shows 1316.
    assert_eq!(
        parse(&f.bytes[..522], 1315),
        Err(ClientHelloError::TooLarge)
    );
    // A handshake length beyond any bound: 16 MiB.
    let huge = [0x16, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff];
    assert_eq!(
        parse(&huge, DEFAULT_MAX_LEN),
        Err(ClientHelloError::TooLarge)
    );
    // Tiny records whose handshake header is not yet known still count.
    assert_eq!(
        parse(&[0x16, 3, 1, 0, 1, 1], 11),
        Err(ClientHelloError::TooLarge)
    );
    assert_eq!(parse(&[0x16, 3, 1, 0, 1, 1], 14), Ok(Parse::Incomplete));
    assert_eq!(parse(&[], 0), Err(ClientHelloError::TooLarge));
}

// ---------------------------------------------------------------- built hellos

/// A ClientHello built field by field, for the malformed cases.
#[derive(Clone)]
struct Hello {
    legacy_version: u16,
    session_id: Vec<u8>,
    suites: Vec<u8>,
    compression: Vec<u8>,
    extensions: Option<Vec<(u16, Vec<u8>)>>,
    after_extensions: Vec<u8>,
}

impl Hello {
    fn new() -> Self {
        Self {
            legacy_version: 0x0303,
            session_id: vec![7; 32],
            suites: vec![0x13, 0x01, 0x13, 0x02],
            compression: vec![0],
            extensions: Some(vec![(43, vec![2, 3, 4])]),
            after_extensions: Vec::new(),
        }
    }

    fn ext(mut self, ty: u16, data: Vec<u8>) -> Self {
        self.extensions
            .get_or_insert_with(Vec::new)
            .push((ty, data));
        self
    }

    fn sni(self, name: &[u8]) -> Self {
        self.ext(0, sni_data(&[(0, name)]))
    }

    fn alpn(self, protocols: &[&[u8]]) -> Self {
        self.ext(16, alpn_data(protocols))
    }

    fn message(&self) -> Vec<u8> {
        let mut body = self.legacy_version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x42; 32]);
        push8(&mut body, &self.session_id);
        push16(&mut body, &self.suites);
        push8(&mut body, &self.compression);
        if let Some(extensions) = &self.extensions {
            let mut block = Vec::new();
            for (ty, data) in extensions {
                block.extend_from_slice(&ty.to_be_bytes());
                push16(&mut block, data);
            }
            push16(&mut body, &block);
        }
        body.extend_from_slice(&self.after_extensions);
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut message = vec![1, len[1], len[2], len[3]];
        message.extend_from_slice(&body);
        message
    }

    fn records(&self) -> Vec<u8> {
        fragment(&self.message(), &[16384])
    }

    fn parse(&self) -> Result<Parse, ClientHelloError> {
        parse(&self.records(), DEFAULT_MAX_LEN)
    }
}

fn push8(out: &mut Vec<u8>, data: &[u8]) {
    out.push(u8::try_from(data.len()).unwrap());
    out.extend_from_slice(data);
}

fn push16(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(data);
}

fn sni_data(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (ty, name) in entries {
        list.push(*ty);
        push16(&mut list, name);
    }
    let mut data = Vec::new();
    push16(&mut data, &list);
    data
}

fn alpn_data(protocols: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protocols {
        push8(&mut list, p);
    }
    let mut data = Vec::new();
    push16(&mut data, &list);
    data
}

fn malformed(reason: &'static str) -> Result<Parse, ClientHelloError> {
    Err(ClientHelloError::Malformed(reason))
}

#[test]
fn built_hello_round_trips() {
    let hello = Hello::new().sni(b"WWW.Example.ORG.").alpn(&[b"h2"]);
    let records = hello.records();
    assert_eq!(
        complete(&records),
        ClientHello {
            server_name: Some("www.example.org".into()),
            alpn: vec![b"h2".to_vec()],
            legacy_version: 0x0303,
            supported_versions: true,
            record_bytes: records.len(),
        }
    );
}

#[test]
fn tls12_hello_without_extensions() {
    let mut hello = Hello::new();
    hello.extensions = None;
    hello.session_id.clear();
    let hello = complete(&hello.records());
    assert_eq!((hello.server_name, hello.alpn.len()), (None, 0));
    assert!(!hello.supported_versions);
}

#[test]
fn not_tls() {
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x80\x2e\x01\x03\x01", // SSLv2-compatible hello
        b"\x17\x03\x03\x00\x10",
        b"\x16\x02",
        b"\x16\x03\x05",
        b"\x16\x04\x01\x00\x10",
        b"PROXY TCP4 ",
    ] {
        assert_eq!(
            parse(bytes, DEFAULT_MAX_LEN),
            Err(ClientHelloError::NotTls),
            "{bytes:?}"
        );
    }
    assert!(looks_like_tls(0x16));
    assert!(!looks_like_tls(b'G'));
    assert!(!looks_like_tls(0x80));
    assert_eq!(parse(&[], DEFAULT_MAX_LEN), Ok(Parse::Incomplete));
    for prefix in [&[0x16][..], &[0x16, 3], &[0x16, 3, 0], &[0x16, 3, 4, 0]] {
        assert_eq!(parse(prefix, DEFAULT_MAX_LEN), Ok(Parse::Incomplete));
    }
}

#[test]
fn not_a_client_hello() {
    // A ServerHello, told apart as soon as its type byte arrives.
    assert_eq!(
        parse(&[0x16, 3, 3, 0, 80, 2], DEFAULT_MAX_LEN),
        Err(ClientHelloError::NotClientHello)
    );
    let mut message = Hello::new().message();
    message[0] = 2;
    assert_eq!(
        parse(&fragment(&message, &[1]), DEFAULT_MAX_LEN),
        Err(ClientHelloError::NotClientHello)
    );
}

#[test]
fn record_layer_rules() {
    let message = Hello::new().sni(b"a.example").message();
    assert_eq!(
        parse(&[0x16, 3, 1, 0, 0], DEFAULT_MAX_LEN),
        malformed("empty handshake record")
    );
    assert_eq!(
        parse(&[0x16, 3, 1, 0x40, 1], usize::MAX),
        malformed("record longer than 2^14 bytes")
    );
    // A record of another type before the ClientHello is complete.
    let mut records = fragment(&message[..10], &[10]);
    records.extend_from_slice(&[0x15, 3, 3, 0, 2, 2, 40]);
    assert_eq!(
        parse(&records, DEFAULT_MAX_LEN),
        malformed("non-handshake record inside the ClientHello")
    );
    let mut records = fragment(&message[..10], &[10]);
    records.extend_from_slice(&[0x16, 2, 3]);
    assert_eq!(
        parse(&records, DEFAULT_MAX_LEN),
        malformed("record version is not 3.x")
    );
    // The ClientHello must end at a record boundary (RFC 8446 §5.1).
    let mut extra = message.clone();
    extra.extend_from_slice(&[0x14, 0, 0, 0]);
    assert_eq!(
        parse(&fragment(&extra, &[16384]), DEFAULT_MAX_LEN),
        malformed("ClientHello does not end at a record boundary")
    );
    // ... decided from the record length, before its bytes arrive.
    assert_eq!(
        parse(&fragment(&extra, &[16384])[..12], DEFAULT_MAX_LEN),
        malformed("ClientHello does not end at a record boundary")
    );
    // Records of version 3.0 to 3.4 are all accepted.
    let mut records = fragment(&message, &[20]);
    records[2] = 0;
    assert!(matches!(
        parse(&records, DEFAULT_MAX_LEN),
        Ok(Parse::Complete(_))
    ));
}

#[test]
fn malformed_client_hello_bodies() {
    let base = Hello::new();
    let mut h = base.clone();
    h.legacy_version = 0x0203;
    assert_eq!(h.parse(), malformed("legacy_version is not 3.x"));
    let mut h = base.clone();
    h.session_id = vec![0; 33];
    assert_eq!(
        h.parse(),
        malformed("legacy_session_id longer than 32 bytes")
    );
    let mut h = base.clone();
    h.suites = vec![0x13];
    assert_eq!(h.parse(), malformed("cipher_suites length is zero or odd"));
    let mut h = base.clone();
    h.suites.clear();
    assert_eq!(h.parse(), malformed("cipher_suites length is zero or odd"));
    let mut h = base.clone();
    h.compression.clear();
    assert_eq!(h.parse(), malformed("no compression methods"));
    let mut h = base.clone();
    h.after_extensions = vec![0];
    assert_eq!(h.parse(), malformed("bytes after the extensions"));
    let mut h = base.clone();
    h.extensions = None;
    h.after_extensions = vec![0];
    assert_eq!(h.parse(), malformed("truncated extensions"));

    // Truncations of each field: cut the body short and fix up the lengths.
    let message = base.clone().sni(b"example.com").message();
    let reasons = (4..message.len())
        .filter_map(|cut| {
            let mut m = message[..cut].to_vec();
            let len = u32::try_from(cut - 4).unwrap().to_be_bytes();
            m[1..4].copy_from_slice(&len[1..]);
            match parse(&fragment(&m, &[16384]), DEFAULT_MAX_LEN) {
                Err(ClientHelloError::Malformed(reason)) => Some(reason),
                // Ending right after the compression methods is a valid TLS 1.2 hello.
                Ok(Parse::Complete(h)) if h.server_name.is_none() => None,
                other => panic!("cut at {cut}: {other:?}"),
            }
        })
        .collect::<std::collections::BTreeSet<_>>();
    for reason in [
        "truncated legacy_version",
        "truncated random",
        "truncated legacy_session_id",
        "truncated cipher_suites",
        "truncated legacy_compression_methods",
        "truncated extensions",
    ] {
        assert!(reasons.contains(reason), "{reason} not seen in {reasons:?}");
    }
}

#[test]
fn malformed_extensions() {
    let base = Hello::new();
    let cases: Vec<(Hello, &str)> = vec![
        (
            base.clone().ext(0xff01, vec![0]).ext(0xff01, vec![0]),
            "duplicate extension",
        ),
        (
            base.clone().sni(b"a.example").sni(b"b.example"),
            "duplicate extension",
        ),
        (base.clone().ext(43, vec![2, 3, 4]), "duplicate extension"),
        (
            base.clone().ext(41, vec![0; 8]).sni(b"a.example"),
            "pre_shared_key is not the last extension",
        ),
        (base.clone().ext(0, vec![]), "truncated server_name list"),
        (base.clone().ext(0, vec![0, 0]), "empty server_name list"),
        (
            base.clone().ext(0, vec![0, 1, 0]),
            "truncated server_name entry",
        ),
        (
            base.clone().ext(0, vec![0, 3, 0, 0, 5]),
            "truncated server_name entry",
        ),
        (
            base.clone().ext(0, vec![0, 3, 0, 0, 0, 9]),
            "bytes after the server_name list",
        ),
        (
            base.clone()
                .ext(0, sni_data(&[(0, b"a.example"), (0, b"b.example")])),
            "more than one host_name in server_name",
        ),
        (base.clone().ext(16, vec![]), "truncated ALPN list"),
        (base.clone().ext(16, vec![0, 0]), "empty ALPN list"),
        (
            base.clone().ext(16, vec![0, 1, 0]),
            "empty ALPN protocol name",
        ),
        (
            base.clone().ext(16, vec![0, 2, 5, b'h']),
            "truncated ALPN protocol name",
        ),
        (
            base.clone().ext(16, vec![0, 3, 2, b'h', b'2', 0]),
            "bytes after the ALPN list",
        ),
        (
            base.clone().alpn(&[&b"x"[..]; 17]),
            "more than 16 ALPN protocols",
        ),
    ];
    for (hello, reason) in cases {
        assert_eq!(hello.parse(), malformed(reason), "{reason}");
    }
    let mut h = base.clone();
    h.extensions = Some(vec![(43, vec![])]);
    assert_eq!(h.parse(), malformed("truncated supported_versions"));
    for data in [vec![0], vec![3, 3, 4, 3]] {
        h.extensions = Some(vec![(43, data)]);
        assert_eq!(
            h.parse(),
            malformed("supported_versions length is zero or odd")
        );
    }
    h.extensions = Some(vec![(43, vec![2, 3, 4, 0])]);
    assert_eq!(
        h.parse(),
        malformed("bytes after the supported_versions list")
    );
    // An extension header cut short inside the block.
    let mut h = base.clone();
    h.extensions = None;
    h.after_extensions = vec![0, 1, 0];
    assert_eq!(h.parse(), malformed("truncated extension header"));
    h.after_extensions = vec![0, 5, 0, 0, 0, 9, 1];
    assert_eq!(h.parse(), malformed("truncated extension data"));
}

#[test]
fn extensions_accepted() {
    // pre_shared_key last, unknown name types, GREASE, 16 ALPN names, an SNI list with
    // no host_name.
    let hello = Hello::new()
        .ext(0x0a0a, vec![])
        .ext(0, sni_data(&[(1, b"opaque"), (0, b"Host.Example")]))
        .alpn(&[&b"p"[..]; 16])
        .ext(0x1a1a, vec![0])
        .ext(41, vec![0; 8]);
    let parsed = complete(&hello.records());
    assert_eq!(parsed.server_name.as_deref(), Some("host.example"));
    assert_eq!(parsed.alpn.len(), 16);
    let hello = Hello::new().ext(0, sni_data(&[(7, b"x")]));
    assert_eq!(complete(&hello.records()).server_name, None);
}

#[test]
fn server_name_validation() {
    let label63 = "a".repeat(63);
    let name253 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
    assert_eq!(name253.len(), 253);
    let good: Vec<(String, &str)> = vec![
        ("Example.COM".into(), "example.com"),
        ("example.com.".into(), "example.com"),
        (
            "_acme-challenge.x-y.example".into(),
            "_acme-challenge.x-y.example",
        ),
        ("localhost".into(), "localhost"),
        ("1.2.3.4".into(), "1.2.3.4"),
        (format!("{label63}.example"), ""),
        (name253.clone(), ""),
        (format!("{name253}."), ""),
    ];
    for (name, want) in good {
        let parsed = complete(&Hello::new().sni(name.as_bytes()).records());
        let want = if want.is_empty() {
            name.trim_end_matches('.')
        } else {
            want
        };
        assert_eq!(parsed.server_name.as_deref(), Some(want), "{name}");
    }
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b".".to_vec(),
        b"..".to_vec(),
        b"example..com".to_vec(),
        b".example.com".to_vec(),
        b"example.com..".to_vec(),
        b"exa mple.com".to_vec(),
        b"example.com/".to_vec(),
        b"*.example.com".to_vec(),
        b"ex\0ample.com".to_vec(),
        "bücher.example".as_bytes().to_vec(),
        b"[::1]".to_vec(),
        b"example.com:443".to_vec(),
        format!("{label63}a.example").into_bytes(),
        format!("{name253}b").into_bytes(),
        format!("x.{name253}").into_bytes(),
    ];
    for name in bad {
        assert_eq!(
            Hello::new().sni(&name).parse(),
            Err(ClientHelloError::BadServerName),
            "{:?}",
            String::from_utf8_lossy(&name)
        );
    }
}

#[test]
fn errors_nest_in_the_crate_error() {
    let e: crate::Error = ClientHelloError::TooLarge.into();
    assert_eq!(e.to_string(), "the ClientHello is larger than allowed");
    assert_eq!(
        ClientHelloError::Malformed("duplicate extension").to_string(),
        "malformed ClientHello: duplicate extension"
    );
}

// ---------------------------------------------------------------- properties

fn fixture_index() -> impl Strategy<Value = usize> {
    0..FIXTURES.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        crate::fuzzing::client_hello(&data);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header(
        len in 0u16..2048,
        body_len in 0u32..2048,
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut buf = vec![0, 0x16, 3, 1];
        buf.extend_from_slice(&len.to_be_bytes());
        buf.push(1);
        buf.extend_from_slice(&body_len.to_be_bytes()[1..]);
        buf.extend_from_slice(&data);
        crate::fuzzing::client_hello(&buf);
        if let Ok(Parse::Complete(h)) = parse(&buf[1..], DEFAULT_MAX_LEN) {
            prop_assert!(h.record_bytes < buf.len());
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(
        i in fixture_index(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = FIXTURES[i].bytes.to_vec();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes.insert(0, 0);
        crate::fuzzing::client_hello(&bytes);
    }

    #[test]
    fn any_fragmentation_and_split_gives_the_same_hello(
        i in fixture_index(),
        sizes in proptest::collection::vec(1usize..700, 1..6),
        segments in proptest::collection::vec(1usize..400, 1..6),
    ) {
        let f = &FIXTURES[i];
        let records = fragment(&handshake_message(f.bytes), &sizes);
        let whole = parse(&records, DEFAULT_MAX_LEN);
        prop_assert_eq!(&whole, &Ok(Parse::Complete(expected(f, records.len()))));
        let mut received = Vec::new();
        for segment in chunks(&records, &segments) {
            prop_assert_eq!(parse(&received, DEFAULT_MAX_LEN), Ok(Parse::Incomplete));
            received.extend_from_slice(segment);
        }
        prop_assert_eq!(parse(&received, DEFAULT_MAX_LEN), whole);
    }

    #[test]
    fn built_hellos_round_trip(
        name in "[a-zA-Z0-9_-]{1,63}(\\.[a-zA-Z0-9_-]{1,63}){0,2}\\.?",
        alpn in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..=16),
        sizes in proptest::collection::vec(1usize..300, 1..4),
    ) {
        let protocols: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
        let mut hello = Hello::new().sni(name.as_bytes());
        if !protocols.is_empty() {
            hello = hello.alpn(&protocols);
        }
        let records = fragment(&hello.message(), &sizes);
        let parsed = complete(&records);
        let want = name.strip_suffix('.').unwrap_or(&name).to_ascii_lowercase();
        prop_assert_eq!(parsed.server_name, Some(want));
        prop_assert_eq!(parsed.alpn, alpn);
        prop_assert_eq!(parsed.record_bytes, records.len());
    }
}
