//! The original's `agent recover`: the workload's image lives in MCR; the
//! agent pulls it with its own MCIAS token (TLS verified against the
//! platform CA). Then the agent is killed, its containers removed and its
//! Podman storage wiped; a restarted agent's Reconcile pulls the image
//! again and brings the service back behind the same route.

use mc_proto::deploy::v1 as pb;

use super::{Node, req, web};

#[test]
fn reconcile_recreates_everything_from_mcr_after_the_storage_is_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::start(dir.path());
    let local = node.image(1);
    let remote = format!("{}/apps/web:1", node.registry);
    let creds = format!("admin:{}", node.admin_password);
    let certs = node.registry_certs.display().to_string();
    let out = node.podman(&[
        "push",
        "--cert-dir",
        &certs,
        "--creds",
        &creds,
        &local,
        &format!("docker://{remote}"),
    ]);
    assert!(
        out.status.success(),
        "podman push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only MCR has it now.
    assert!(node.podman(&["rmi", "--all", "--force"]).status.success());

    let apply = |node: &Node| {
        node.block(|mut c, t| async move { c.apply_service(req(web(&remote, "/", 0), &t)).await })
            .expect("ApplyService")
            .into_inner()
    };
    let r = apply(&node);
    let image = r
        .steps
        .iter()
        .find(|s| s.step == "app/image")
        .expect("image step");
    assert!(
        r.success && image.message.ends_with("pulled"),
        "{:?}",
        r.steps
    );
    assert_eq!(node.get(), (200, "web v1\n".to_owned()));

    // Kill the agent and its containers, wipe the storage.
    node.kill_agent();
    assert!(
        node.podman(&["rm", "--all", "--force", "--time", "0"])
            .status
            .success()
    );
    assert!(
        node.podman(&["system", "reset", "--force"])
            .status
            .success()
    );
    assert_ne!(node.get().0, 200);

    node.start_agent();
    let r = node
        .block(
            |mut c, t| async move { c.reconcile(req(pb::ReconcileRequest::default(), &t)).await },
        )
        .expect("Reconcile")
        .into_inner();
    assert!(r.success, "{:?}", r.steps);
    assert!(
        r.steps
            .iter()
            .any(|s| s.step == "web: app/image" && s.message.ends_with("pulled")),
        "{:?}",
        r.steps
    );
    node.wait_serving("web v1\n");
}
