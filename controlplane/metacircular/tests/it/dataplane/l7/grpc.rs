//! L7 gRPC: a tonic client through the proxy to a tonic backend over h2c,
//! every call kind (unary, server, client and bidi streams, errors).

use mc_proto::testing::v1 as echo;

use super::backends::Backends;
use super::{Pki, l7_toml, route};
use crate::peers::{Dataplane, free_port};

fn grpc_calls_of_every_kind(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("grpc", &["grpc.test"]);
    let backends = Backends::new();
    let grpc = backends.grpc();
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(
            &pki,
            listen,
            &[("grpc", &chain, &key)],
            &route(
                "grpc.test",
                grpc,
                "certificate = \"grpc\", backend_protocol = \"h2c\"",
            ),
        ),
    );
    let proxy = dp.listen("public");
    let ca = std::fs::read_to_string(pki.ca()).expect("ca");
    backends.rt.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("grpc.test");
        // The request's `:authority` names the route the SNI chose (else 421).
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{proxy}"))
            .expect("endpoint")
            .origin(
                format!("https://grpc.test:{}", proxy.port())
                    .parse()
                    .expect("origin"),
            )
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect through the proxy");
        let mut c = echo::echo_client::EchoClient::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        let msg = |t: &str| echo::EchoMessage {
            text: t.to_owned(),
            ..Default::default()
        };

        // Unary, and a large message each way.
        let r = c.unary(msg("hello")).await.expect("unary").into_inner();
        assert_eq!(r.text, "hello");
        let big = echo::EchoMessage {
            payload: vec![7u8; 4 << 20],
            ..msg("big")
        };
        let r = c.unary(big).await.expect("4 MiB unary").into_inner();
        assert_eq!(r.payload.len(), 4 << 20);

        // Status and message carried in trailers.
        let e = c
            .unary(echo::EchoMessage {
                fail_with_code: tonic::Code::NotFound as i32,
                ..msg("no such thing")
            })
            .await
            .expect_err("error status");
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(e.message(), "no such thing");

        // Server streaming.
        let mut s = c
            .server_stream(echo::EchoMessage {
                count: 500,
                ..msg("item")
            })
            .await
            .expect("server stream")
            .into_inner();
        let mut n = 0;
        while let Some(m) = s.message().await.expect("stream item") {
            assert_eq!(m.text, format!("item {n}"));
            n += 1;
        }
        assert_eq!(n, 500);

        // Client streaming.
        let items = (0..50).map(move |i| echo::EchoMessage {
            payload: vec![1u8; 1000],
            ..msg(&i.to_string())
        });
        let r = c
            .client_stream(tokio_stream::iter(items))
            .await
            .expect("client stream")
            .into_inner();
        assert_eq!(r.count, 50_000);
        assert!(r.text.starts_with("0,1,2") && r.text.ends_with("49"));

        // Bidirectional, with the sender waiting for each answer.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut answers = c
            .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("bidi")
            .into_inner();
        for i in 0..20 {
            tx.send(msg(&format!("m{i}"))).await.expect("send");
            let a = answers.message().await.expect("answer").expect("some");
            assert_eq!(a.text, format!("echo m{i}"));
        }
        drop(tx);
        assert!(answers.message().await.expect("end").is_none());
    });
    let status = dp.status();
    let r = &status["listeners"][0]["routes"][0];
    assert!(r["responses"]["2xx"].as_u64() >= Some(6), "{status}");
}
both_drivers!(grpc_calls_of_every_kind);
