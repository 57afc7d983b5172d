//! The ACME (RFC 8555) client of MC-Proxy's managed certificates, on
//! `instant-acme` (the proxy engine gets it as its
//! [`mc_proxy::admin::AcmeClient`] and links no ACME client itself).
//!
//! One order: restore the stored account or create one (with EAB when
//! given), order the names, publish each HTTP-01 key authorization for the
//! plain-HTTP listeners, tell the CA, wait for `ready`, finalize with the
//! host-made CSR, download the chain.
//!
//! Invariants: the directory's TLS is verified against the configured PEM
//! bundle only; a response body is read up to [`MAX_BODY`]; every token
//! published is withdrawn when the order ends, however it ends.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, ExternalAccountKey,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use mc_proxy::admin::{AcmeClient, AcmeFuture, AcmeIssued, AcmeOrder};
use mc_proxy::http01::Http01Tokens;
use zeroize::Zeroizing;

/// Largest response body read from a CA (a chain is a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// How long the CA may take to validate, and to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(60));

/// The client handed to the proxy at start.
pub(crate) struct Client;

impl AcmeClient for Client {
    fn order(&self, order: AcmeOrder) -> AcmeFuture {
        Box::pin(run(order))
    }
}

/// HTTPS to the directory, trusting only the configured bundle.
struct Https(HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>);

impl HttpClient for Https {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>,
    > {
        let fut = self.0.request(req);
        Box::pin(async move {
            let rsp = fut
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(
                rsp.map(|b| http_body_util::Limited::new(b, MAX_BODY)),
            ))
        })
    }
}

fn https(ca_file: &std::path::Path) -> Result<Https, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("ACME ca_cert {}: {e}", ca_file.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("ACME ca_cert {}: {e}", ca_file.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("ACME ca_cert {}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Https(
        HyperClient::builder(TokioExecutor::new()).build(connector),
    ))
}

async fn run(order: AcmeOrder) -> AcmeIssued {
    let mut new_account = None;
    let chain_pem = obtain(order, &mut new_account).await;
    AcmeIssued {
        chain_pem,
        new_account,
    }
}

/// The account: restored from `stored`, or created (its credentials put in `created`).
async fn account(
    order: &AcmeOrder,
    created: &mut Option<Zeroizing<String>>,
) -> Result<Account, String> {
    let builder = Account::builder_with_http(Box::new(https(&order.ca_file)?));
    if let Some(stored) = &order.account {
        let credentials = serde_json::from_str(stored)
            .map_err(|e| format!("the stored ACME account does not parse: {e}"))?;
        return builder
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("ACME directory {}: {e}", order.directory));
    }
    let eab = match &order.eab {
        Some((kid, hmac)) => {
            let key = Zeroizing::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(hmac.trim_end_matches('='))
                    .map_err(|_| "the EAB HMAC key is not base64url".to_owned())?,
            );
            Some(ExternalAccountKey::new(kid.clone(), &key))
        }
        None => None,
    };
    let new = NewAccount {
        contact: &[],
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = builder
        .create(&new, order.directory.clone(), eab.as_ref())
        .await
        .map_err(|e| format!("creating the ACME account at {}: {e}", order.directory))?;
    let json = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
    *created = Some(Zeroizing::new(json));
    Ok(account)
}

async fn obtain(
    order: AcmeOrder,
    created: &mut Option<Zeroizing<String>>,
) -> Result<String, String> {
    let account = account(&order, created).await?;
    let ids: Vec<Identifier> = order
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    let mut acme = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut published = Published {
        tokens: &order.http01,
        open: Vec::new(),
    };
    {
        let mut authorizations = acme.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("an authorization is {other:?}")),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or("the CA offers no http-01 challenge")?;
            let host = challenge.identifier().to_string();
            let token = challenge.token.clone();
            let answer = challenge.key_authorization();
            published.open(&host, &token, answer.as_str())?;
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge for {host}: {e}"))?;
        }
    }
    let status = acme
        .poll_ready(&POLL)
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "the order is {status:?}: a challenge failed (is a plain-HTTP listener reachable on the names' port 80 as the CA sees it?)"
        ));
    }
    acme.finalize_csr(&order.csr_der)
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    acme.poll_certificate(&POLL)
        .await
        .map_err(|e| format!("downloading the certificate: {e}"))
}

/// The tokens this order published; withdrawn when dropped.
struct Published<'a> {
    tokens: &'a Arc<Http01Tokens>,
    open: Vec<(String, String)>,
}

impl Published<'_> {
    fn open(&mut self, host: &str, token: &str, answer: &str) -> Result<(), String> {
        self.tokens.publish(host, token, answer)?;
        self.open.push((host.to_owned(), token.to_owned()));
        Ok(())
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        for (host, token) in &self.open {
            self.tokens.withdraw(host, token);
        }
    }
}
