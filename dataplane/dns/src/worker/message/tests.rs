//! Unit tests for request parsing and response limits.

use super::*;

fn query(id: u16, flags: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&flags.to_be_bytes());
    q.extend_from_slice(&[
        0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 1, b'z', 0, 0, 1, 0, 1,
    ]);
    q
}

#[test]
fn short_and_response_messages_get_silence() {
    assert!(matches!(parse(&[0; 11], 1232), Parsed::Drop));
    assert!(matches!(parse(&query(1, 0x8000), 1232), Parsed::Drop));
}

#[test]
fn garbage_after_the_header_is_formerr_with_the_id() {
    let mut q = query(0xbeef, 0x0100);
    q.truncate(15);
    match parse(&q, 1232) {
        Parsed::Reply(b, ResponseCode::FormErr) => {
            assert_eq!(&b[..2], &[0xbe, 0xef]);
            assert_eq!(b[2] & 0x81, 0x81, "QR and RD");
            assert_eq!(b[3] & 0x0f, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_opcodes_are_notimp() {
    // STATUS (2) is not implemented; UPDATE (5) goes on to `process`.
    assert!(matches!(
        parse(&query(1, 2 << 11), 1232),
        Parsed::Reply(_, ResponseCode::NotImp)
    ));
    assert!(matches!(
        parse(&query(1, 5 << 11), 1232),
        Parsed::Request(_)
    ));
}

#[test]
fn limits_follow_edns() {
    let Parsed::Request(req) = parse(&query(1, 0), 1232) else {
        panic!("request")
    };
    assert_eq!(limit(&req, Transport::Udp, 1232), 512);
    assert_eq!(limit(&req, Transport::Tcp, 1232), MAX_TCP_MESSAGE);
    let mut r = (*req).clone();
    r.edns = Some(ClientEdns {
        payload: 4096,
        dnssec_ok: false,
    });
    assert_eq!(limit(&r, Transport::Udp, 1232), 1232);
    r.edns = Some(ClientEdns {
        payload: 100,
        dnssec_ok: false,
    });
    assert_eq!(limit(&r, Transport::Udp, 1232), 512);
}

#[test]
fn oversized_answers_are_truncated_and_empty() {
    let Parsed::Request(req) = parse(&query(7, 0), 1232) else {
        panic!("request")
    };
    let name = req.query.name().clone();
    let answers: Vec<Record> = (0..100_u8)
        .map(|i| {
            Record::from_rdata(
                name.clone(),
                60,
                hickory_proto::rr::RData::A(std::net::Ipv4Addr::new(192, 0, 2, i).into()),
            )
        })
        .collect();
    let (b, truncated) = respond(
        &req,
        ResponseCode::NoError,
        Flags::default(),
        answers,
        vec![],
        vec![],
        512,
        1232,
    );
    assert!(truncated && b.len() <= 512);
    let m = Message::from_vec(&b).expect("valid");
    assert!(m.metadata.truncation && m.answers.is_empty() && m.queries.len() == 1);
}
