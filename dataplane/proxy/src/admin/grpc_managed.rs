//! Certificates in `mc.proxy.v1`, managed ones included (a part of
//! [`super::grpc`] kept apart to keep files short).

use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_proto::proxy::v1 as pb;

use super::ProxyState;
use super::managed::{AcmeSpec, Entry, ManagedSpec};
use crate::tls::StoredCertificate;

fn certificate_pb(c: &StoredCertificate) -> pb::Certificate {
    pb::Certificate {
        name: c.name.clone(),
        chain_pem: c.chain_pem.clone(),
        dns_names: c.info.dns_names.clone(),
        not_before_unix: c.info.not_before_unix,
        not_after_unix: c.info.not_after_unix,
        key_algorithm: c.info.key_algorithm.clone(),
        sha256_fingerprint: c.info.sha256_fingerprint.clone(),
        origin: super::grpc::origin(c.origin),
        managed: None,
    }
}

fn managed_pb(e: &Entry) -> pb::ManagedStatus {
    pb::ManagedStatus {
        source: e.spec.source(),
        dns_names: e.spec.dns_names.clone(),
        next_attempt_unix: e.status.next_attempt_unix,
        failures: e.status.failures,
        last_error: e.status.last_error.clone(),
        last_success_unix: e.status.last_success_unix,
        ttl_seconds: e.spec.ttl_seconds,
    }
}

/// One certificate as answered: the installed one (if any) with its managed status.
fn with_status(installed: Option<&StoredCertificate>, e: Option<&Entry>) -> pb::Certificate {
    let mut c = installed
        .map(certificate_pb)
        .unwrap_or_else(|| pb::Certificate {
            name: e.map(|e| e.spec.name.clone()).unwrap_or_default(),
            origin: pb::Origin::AdminApi as i32,
            ..Default::default()
        });
    c.managed = e.map(managed_pb);
    c
}

/// Every certificate, and managed ones not issued yet, by name.
pub(super) fn list(state: &ProxyState) -> Vec<pb::Certificate> {
    let installed = state.certificates();
    let mut managed: std::collections::BTreeMap<String, Entry> = state
        .managed
        .entries()
        .into_iter()
        .map(|e| (e.spec.name.clone(), e))
        .collect();
    let mut out: Vec<pb::Certificate> = installed
        .iter()
        .map(|c| with_status(Some(c), managed.remove(&c.name).as_ref()))
        .collect();
    out.extend(managed.values().map(|e| with_status(None, Some(e))));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// An uploaded certificate (never a managed one: those are refused).
pub(super) fn installed(stored: &StoredCertificate) -> pb::Certificate {
    certificate_pb(stored)
}

fn answer(state: &ProxyState, e: &Entry) -> pb::Certificate {
    let installed = state
        .certificates()
        .into_iter()
        .find(|c| c.name == e.spec.name);
    with_status(installed.as_ref(), Some(e))
}

pub(super) async fn put(
    state: &Arc<ProxyState>,
    r: pb::PutManagedCertificateRequest,
) -> Result<pb::Certificate, ApiError> {
    let acme = (!r.acme_directory.is_empty()).then(|| AcmeSpec {
        directory: r.acme_directory,
        eab_kid: r.eab_kid.clone(),
        eab_hmac_sealed: String::new(),
    });
    if acme.is_none() && !r.eab_kid.is_empty() {
        return Err(mc_kit::api::Invalid::new("eab_kid", "only for an ACME certificate").into());
    }
    let spec = ManagedSpec {
        name: r.name,
        dns_names: r.dns_names,
        mount: r.mount,
        role: r.role,
        ttl_seconds: r.ttl_seconds,
        acme,
    };
    let e = state
        .put_managed(spec, zeroize::Zeroizing::new(r.eab_hmac))
        .await?;
    Ok(answer(state, &e))
}

pub(super) async fn renew(
    state: &Arc<ProxyState>,
    name: &str,
) -> Result<pb::Certificate, ApiError> {
    let e = state.renew_managed(name).await?;
    Ok(answer(state, &e))
}
