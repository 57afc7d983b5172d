//! ApplyService's health-gated cutover under a request loop, a failing
//! health check that leaves the old version serving, status and drift,
//! reconcile after `podman rm -f`, stop/start, logs, and removal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mc_proto::deploy::v1 as pb;

use super::{Node, req, web};

fn steps(s: &[pb::StepResult]) -> String {
    s.iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s.step,
                if s.success { "ok" } else { "FAILED" },
                s.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn apply(node: &Node, r: pb::ApplyServiceRequest) -> pb::ApplyServiceResponse {
    node.block(|mut c, t| async move { c.apply_service(req(r, &t)).await })
        .expect("ApplyService")
        .into_inner()
}

fn status(node: &Node) -> pb::ServiceStatus {
    node.block(|mut c, t| async move {
        c.get_service_status(req(
            pb::GetServiceStatusRequest {
                service: "web".into(),
            },
            &t,
        ))
        .await
    })
    .expect("status")
    .into_inner()
}

fn containers(node: &Node) -> Vec<String> {
    let out = node.podman(&["ps", "--all", "--format", "{{.Names}} {{.Image}}"]);
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn cutover_is_health_gated_and_redeploys_without_failed_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let v1 = node.image(1);
    let v2 = node.image(2);
    let v3 = node.image(3);

    // First deploy: container, health, route.
    let r = apply(&node, web(&v1, "/", 0));
    assert!(r.success, "{}", steps(&r.steps));
    assert_eq!(node.get(), (200, "web v1\n".to_owned()));
    let st = r.status.expect("status");
    assert_eq!(
        st.components[0].state,
        i32::from(pb::ContainerState::Running)
    );
    assert!(st.components[0].healthy && st.drift.is_empty(), "{st:?}");
    let port_v1 = st.components[0].ports["http"];

    // Redeploy under a request loop: not one request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let loop_node = (node.proxy, node.pki_ca.clone());
    let flag = stop.clone();
    let client = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0_u32, Vec::new());
        while !flag.load(Ordering::Relaxed) {
            match crate::dataplane::l7::curl(loop_node.0, &loop_node.1, super::HOST, "/", &[]) {
                (200, b) if b == "web v1\n" || b == "web v2\n" => ok += 1,
                other => failed.push(other),
            }
        }
        (ok, failed)
    });
    std::thread::sleep(Duration::from_millis(500));
    let r = apply(&node, web(&v2, "/", 0));
    assert!(r.success, "{}", steps(&r.steps));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().expect("client");
    eprintln!(
        "redeploy under load: {ok} requests, {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "failed requests during the cutover: {failed:?}"
    );
    assert!(ok > 0);
    assert_eq!(node.get(), (200, "web v2\n".to_owned()));
    let st = r.status.expect("status");
    assert_ne!(
        st.components[0].ports["http"], port_v1,
        "a fresh port for the new version"
    );
    assert_eq!(containers(&node), [format!("web-app {v2}")]);

    // A version whose health check fails: the old one keeps serving.
    let r = apply(&node, web(&v3, "/missing", 3));
    assert!(!r.success, "{}", steps(&r.steps));
    let last = r.steps.last().expect("steps");
    assert_eq!(
        (last.step.as_str(), last.success),
        ("app/health", false),
        "{}",
        steps(&r.steps)
    );
    assert!(last.message.contains("404"), "{}", last.message);
    assert_eq!(node.get(), (200, "web v2\n".to_owned()));
    assert_eq!(containers(&node), [format!("web-app {v2}")]);
    let st = status(&node);
    assert_eq!(st.components[0].image, v2, "desired state is still v2");

    // The container is removed behind the agent's back: drift, then reconcile.
    assert!(node.podman(&["rm", "--force", "web-app"]).status.success());
    let st = status(&node);
    assert!(
        st.drift.iter().any(|d| d.contains("missing")),
        "{:?}",
        st.drift
    );
    let r = node
        .block(
            |mut c, t| async move { c.reconcile(req(pb::ReconcileRequest::default(), &t)).await },
        )
        .expect("reconcile")
        .into_inner();
    assert!(r.success, "{}", steps(&r.steps));
    assert_eq!(node.get(), (200, "web v2\n".to_owned()));
    assert!(status(&node).drift.is_empty());

    // Logs: the recreated container's first line.
    let lines = node
        .block(|mut c, t| async move {
            let mut s = c
                .service_logs(req(
                    pb::ServiceLogsRequest {
                        service: "web".into(),
                        tail: 10,
                        ..Default::default()
                    },
                    &t,
                ))
                .await?
                .into_inner();
            let mut lines = Vec::new();
            while let Some(l) = s.message().await? {
                lines.push(l.line);
            }
            Ok::<_, tonic::Status>(lines)
        })
        .expect("logs");
    assert!(
        lines.iter().any(|l| l == &format!("{v2} starting")),
        "{lines:?}"
    );

    // Stop stays stopped through reconcile; start serves again.
    let act = |rpc: &str| {
        let rpc = rpc.to_owned();
        node.block(|mut c, t| async move {
            let r = req(
                pb::ServiceActionRequest {
                    service: "web".into(),
                },
                &t,
            );
            match rpc.as_str() {
                "stop" => c.stop_service(r).await,
                _ => c.start_service(r).await,
            }
        })
        .expect("action")
        .into_inner()
    };
    assert!(act("stop").success);
    assert_ne!(node.get().0, 200);
    node.block(
        |mut c, t| async move { c.reconcile(req(pb::ReconcileRequest::default(), &t)).await },
    )
    .expect("reconcile");
    assert_eq!(
        status(&node).components[0].state,
        i32::from(pb::ContainerState::Stopped)
    );
    assert!(act("start").success);
    node.wait_serving("web v2\n");

    // Bad input changes nothing; removal takes route and container away.
    let bad = node.block(|mut c, t| async move {
        c.apply_service(req(web("localhost/mcp-test/web:latest", "/", 0), &t))
            .await
    });
    assert_eq!(
        bad.expect_err("latest").code(),
        tonic::Code::InvalidArgument
    );
    assert_eq!(node.get(), (200, "web v2\n".to_owned()));
    let r = node
        .block(|mut c, t| async move {
            c.remove_service(req(
                pb::RemoveServiceRequest {
                    service: "web".into(),
                    purge: true,
                },
                &t,
            ))
            .await
        })
        .expect("remove")
        .into_inner();
    assert!(r.success, "{}", steps(&r.steps));
    assert_ne!(node.get().0, 200);
    assert!(containers(&node).is_empty(), "{:?}", containers(&node));
    let gone = node.block(|mut c, t| async move {
        c.get_service_status(req(
            pb::GetServiceStatusRequest {
                service: "web".into(),
            },
            &t,
        ))
        .await
    });
    assert_eq!(gone.expect_err("removed").code(), tonic::Code::NotFound);
}
