//! A verifying service (JWKS offline plus a cached revocation check) sees a
//! revocation within its cache TTL.

use super::*;

/// Another service verifies MCIAS tokens offline (JWKS) with a revocation
/// check, cached: a revocation reaches it within the cache TTL (here 1 s).
#[test]
fn a_verifying_service_sees_revocation_within_its_cache_ttl() {
    use mc_service::auth::TokenVerifier;
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "svc-mcr", "type": "system"})),
    );
    let (_, st) = cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(&admin),
        Some(serde_json::json!({"account_id": "svc-mcr", "description": "mcr verifier"})),
    );
    let service_token = st["token"].as_str().expect("token").to_owned();
    let user_pw = "gina's long password";
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "gina", "password": user_pw, "roles": ["user"]})),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let ca = std::fs::read(&cp.ca).expect("ca");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("localhost");
        let channel = tonic::transport::Endpoint::from_shared(cp.grpc.clone())
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let remote = mc_service::auth::remote::RemoteVerifier::new(
            channel,
            service_token,
            cp.rest.clone(),
            "metacircular".into(),
        );
        // Login forwarded by the service, with its name: MCIAS policy decides.
        let (token, _) = remote
            .login("gina", user_pw, "", "mcr", &[])
            .await
            .expect("forwarded login");
        let verifier = mc_service::auth::CachedVerifier::new(remote, Duration::from_secs(1), 1000);
        let p = verifier.verify(&token).await.expect("valid");
        assert_eq!(
            (p.username.as_str(), p.roles.as_slice()),
            ("gina", &["user".to_owned()][..])
        );
        assert!(verifier.verify("not.a.token").await.is_err());

        // Revoke at MCIAS: the cached answer stands until the TTL, then the service sees it.
        let (_, v) = cp.call(
            "POST",
            "/v1/auth/validate",
            None,
            Some(serde_json::json!({"token": token})),
        );
        let jti = v["jti"].as_str().expect("jti").to_owned();
        assert_eq!(
            cp.call(
                "DELETE",
                &format!("/v1/iam/tokens/{jti}"),
                Some(&admin),
                None
            )
            .0,
            200
        );
        let revoked_at = Instant::now();
        let mut seen = false;
        while revoked_at.elapsed() < Duration::from_secs(30) {
            if verifier.verify(&token).await == Err(mc_service::auth::AuthError::Revoked) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "the revocation never reached the verifying service");
        eprintln!(
            "revocation reached the verifying service after {:?}",
            revoked_at.elapsed()
        );

        // A password change revokes older tokens for remote verifiers too.
        let (token2, _) = verifier_login(&cp, "gina", user_pw);
        let new_pw = "gina's newer long password";
        assert_eq!(
            cp.call(
                "POST",
                "/v1/auth/password",
                Some(&token2),
                Some(serde_json::json!({"old_password": user_pw, "new_password": new_pw}))
            )
            .0,
            204
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            verifier.verify(&token2).await,
            Err(mc_service::auth::AuthError::Revoked)
        );
    });
}

fn verifier_login(cp: &Controlplane, user: &str, pw: &str) -> (String, i64) {
    let (code, body) = cp.login(user, pw, None);
    assert_eq!(code, 200, "{body}");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["expires_at"].as_i64().unwrap_or(0),
    )
}
