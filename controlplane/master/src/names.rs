//! A deploy's certificate and DNS steps, on the service's node through the
//! front door (`relay::own`: the node's agent relays to its data plane;
//! each change in the data-plane audit trail under the operator's name).
//!
//! - `certificate` (before the agent's apply, whose L7 routes name it):
//!   each L7 route's hostname gets a managed certificate on the node's
//!   MC-Proxy from `mcp.pki_mount`/`pki_role` (`PutManagedCertificate`:
//!   the proxy makes the key and has Metacrypt sign its CSR; the first
//!   attempt is made before it answers). One the proxy already holds from
//!   the same source is kept; only certificates this attempt created are
//!   removed again when the deploy fails ([`Issued::rollback`]).
//! - `dns` (after the apply): each route hostname under `mcp.zone` gets an
//!   A (or AAAA) record in the node's MCNS zone `mcp.zone`, the node's
//!   registered address, under the record API's name rule with the service
//!   as the account: service `docs` may publish `docs.<zone>` and names
//!   below it only. A failure leaves the new version serving and the
//!   deploy marked failed at `dns`; a redeploy retries.
//!
//! Undeploy removes the records first, then (after the agent removed the
//! routes) the managed certificates of this source.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use mc_proto::dns::v1 as dns;
use mc_proto::proxy::v1 as proxy;
use mc_service::caller::Caller;

use crate::Master;
use crate::deploy::step;
use crate::relay::{own, scope};
use crate::spec::{Mode, ServiceDef};
use crate::store::{NodeRow, Step};

const PUT_MANAGED: &str = "/mc.proxy.v1.ProxyAdmin/PutManagedCertificate";
const LIST_CERTS: &str = "/mc.proxy.v1.ProxyAdmin/ListCertificates";
const UNMANAGE: &str = "/mc.proxy.v1.ProxyAdmin/RemoveManagedCertificate";
const REMOVE_CERT: &str = "/mc.proxy.v1.ProxyAdmin/RemoveCertificate";
const UPSERT_RECORD: &str = "/mc.dns.v1.DnsAdmin/UpsertRecord";
const DELETE_RECORDS: &str = "/mc.dns.v1.DnsAdmin/DeleteRecords";

/// Route hostnames of `def` (defaulted as the agent does), L7 ones only
/// with `l7_only`, each once.
pub(crate) fn hostnames(def: &ServiceDef, zone: &str, l7_only: bool) -> Vec<String> {
    let mut seen = BTreeSet::new();
    def.components
        .iter()
        .flat_map(|c| c.routes.iter())
        .filter(|r| !l7_only || r.mode == Mode::L7)
        .map(|r| {
            if r.hostname.is_empty() {
                format!("{}.{zone}", def.name)
            } else {
                r.hostname.to_ascii_lowercase()
            }
        })
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

fn source(m: &Master) -> String {
    format!("metacrypt:{}/{}", m.config.pki_mount, m.config.pki_role)
}

/// The node proxy's certificates, or a failed `certificate` step.
async fn held(
    m: &Master,
    c: &Caller,
    node: &str,
    why: &str,
    steps: &mut Vec<Step>,
) -> Option<Vec<proxy::Certificate>> {
    let req = proxy::ListCertificatesRequest {};
    let held: Result<proxy::ListCertificatesResponse, _> =
        own(m, c, node, LIST_CERTS, why, &req).await;
    match held {
        Ok(h) => Some(h.certificates),
        Err(s) => {
            steps.push(step("certificate", false, s.message()));
            None
        }
    }
}

/// Certificates this attempt created, to remove if the deploy fails.
#[derive(Default)]
pub(crate) struct Issued(Vec<String>);

/// The certificate step. `Err` holds the failed step (and the attempt's
/// certificates are already rolled back).
pub(crate) async fn certificates(
    m: &Master,
    c: &Caller,
    node: &str,
    def: &ServiceDef,
    steps: &mut Vec<Step>,
) -> Result<Issued, ()> {
    let hosts = hostnames(def, &m.config.zone, true);
    if m.config.pki_mount.is_empty() || hosts.is_empty() {
        return Ok(Issued::default());
    }
    let why = format!("deploy {}", def.name);
    let Some(held) = held(m, c, node, &why, steps).await else {
        return Err(());
    };
    let mut issued = Issued::default();
    for host in hosts {
        let mine = held
            .iter()
            .find(|x| x.name == host)
            .and_then(|x| x.managed.as_ref())
            .is_some_and(|s| s.source == source(m));
        let req = proxy::PutManagedCertificateRequest {
            name: host.clone(),
            dns_names: vec![host.clone()],
            mount: m.config.pki_mount.clone(),
            role: m.config.pki_role.clone(),
            ttl_seconds: 0,
            ..Default::default()
        };
        let put: Result<proxy::Certificate, _> = own(m, c, node, PUT_MANAGED, &why, &req).await;
        let failure = match &put {
            Ok(cert) => match &cert.managed {
                Some(s) if s.failures > 0 || cert.chain_pem.is_empty() => {
                    Some(s.last_error.clone())
                }
                _ => None,
            },
            Err(s) => Some(s.message().to_owned()),
        };
        if put.is_ok() && !mine {
            issued.0.push(host.clone());
        }
        if let Some(why_not) = failure {
            steps.push(step("certificate", false, format!("{host}: {why_not}")));
            issued.rollback(m, c, node, &def.name, steps).await;
            return Err(());
        }
        let expires = put.map(|x| x.not_after_unix).unwrap_or_default();
        steps.push(step(
            "certificate",
            true,
            format!(
                "{host}: issued by {}, expires {expires} (unix), renewed by the proxy",
                source(m)
            ),
        ));
    }
    Ok(issued)
}

impl Issued {
    /// Removes the certificates this attempt created (the deploy failed).
    pub(crate) async fn rollback(
        self,
        m: &Master,
        c: &Caller,
        node: &str,
        service: &str,
        steps: &mut Vec<Step>,
    ) {
        for host in self.0 {
            if let Err(e) = remove_certificate(m, c, node, service, &host).await {
                steps.push(step("rollback/certificate", false, format!("{host}: {e}")));
            }
        }
    }
}

async fn remove_certificate(
    m: &Master,
    c: &Caller,
    node: &str,
    service: &str,
    host: &str,
) -> Result<(), String> {
    let why = format!("remove {service}");
    let req = proxy::RemoveCertificateRequest {
        name: host.to_owned(),
    };
    let r: Result<proxy::RemoveCertificateResponse, _> =
        own(m, c, node, UNMANAGE, &why, &req).await;
    r.map_err(|s| s.message().to_owned())?;
    let r: Result<proxy::RemoveCertificateResponse, _> =
        own(m, c, node, REMOVE_CERT, &why, &req).await;
    r.map(|_| ()).map_err(|s| s.message().to_owned())
}

/// Undeploy: the managed certificates of this source for `def`'s L7 routes.
pub(crate) async fn remove_certificates(
    m: &Master,
    c: &Caller,
    node: &str,
    def: &ServiceDef,
    steps: &mut Vec<Step>,
) {
    let hosts = hostnames(def, &m.config.zone, true);
    if m.config.pki_mount.is_empty() || hosts.is_empty() {
        return;
    }
    let why = format!("undeploy {}", def.name);
    let Some(held) = held(m, c, node, &why, steps).await else {
        return;
    };
    for host in hosts {
        let ours = held
            .iter()
            .any(|x| x.name == host && x.managed.as_ref().is_some_and(|s| s.source == source(m)));
        if !ours {
            continue;
        }
        match remove_certificate(m, c, node, &def.name, &host).await {
            Ok(()) => steps.push(step("certificate", true, format!("{host}: removed"))),
            Err(e) => steps.push(step("certificate", false, format!("{host}: {e}"))),
        }
    }
}

/// The record for `host`: its name relative to the zone, or why none.
fn record_name(m: &Master, service: &str, host: &str) -> Result<Option<String>, String> {
    let zone = &m.config.zone;
    let Some(rel) = host.strip_suffix(&format!(".{zone}")) else {
        return Ok(None);
    };
    if !scope::under_label(service, zone, rel) {
        return Err(format!(
            "{host}: a service publishes only {service}.{zone} and names under it (the record API's name rule)"
        ));
    }
    Ok(Some(rel.to_owned()))
}

/// The address records point at: the IP of the node's registered agent address.
fn node_ip(node: &NodeRow) -> Result<IpAddr, String> {
    match node.address.parse::<SocketAddr>() {
        Ok(a) if !a.ip().is_unspecified() => Ok(a.ip()),
        _ => Err(format!(
            "node {} registered the address {:?}, not an IP to publish (set [master] address in its agent config)",
            node.name, node.address
        )),
    }
}

/// The DNS step; `false` when a record could not be published.
pub(crate) async fn publish(
    m: &Master,
    c: &Caller,
    node: &NodeRow,
    def: &ServiceDef,
    steps: &mut Vec<Step>,
) -> bool {
    if !m.config.dns {
        return true;
    }
    let why = format!("deploy {}", def.name);
    let mut ok = true;
    for host in hostnames(def, &m.config.zone, false) {
        let rel = match record_name(m, &def.name, &host) {
            Ok(Some(rel)) => rel,
            Ok(None) => {
                steps.push(step(
                    "dns",
                    true,
                    format!("{host} is outside zone {}: no record", m.config.zone),
                ));
                continue;
            }
            Err(e) => {
                ok = false;
                steps.push(step("dns", false, e));
                continue;
            }
        };
        let ip = match node_ip(node) {
            Ok(ip) => ip,
            Err(e) => {
                ok = false;
                steps.push(step("dns", false, e));
                continue;
            }
        };
        let rtype = if ip.is_ipv4() {
            dns::RecordType::A
        } else {
            dns::RecordType::Aaaa
        };
        // The record names this node only: another address of the RRset
        // (a node the service left) goes first.
        let del = dns::DeleteRecordsRequest {
            zone: m.config.zone.clone(),
            name: rel.clone(),
            r#type: rtype.into(),
            value: String::new(),
        };
        let cleared: Result<dns::ChangeResponse, _> =
            own(m, c, &node.name, DELETE_RECORDS, &why, &del).await;
        let req = dns::UpsertRecordRequest {
            record: Some(dns::Record {
                zone: m.config.zone.clone(),
                name: rel,
                r#type: rtype.into(),
                ttl: 0,
                value: ip.to_string(),
                ..dns::Record::default()
            }),
        };
        let r: Result<dns::ChangeResponse, _> = match cleared {
            Err(s) if s.code() != tonic::Code::NotFound => Err(s),
            _ => own(m, c, &node.name, UPSERT_RECORD, &why, &req).await,
        };
        match r {
            Ok(_) => steps.push(step(
                "dns",
                true,
                format!(
                    "{host} {} {ip}",
                    rtype.as_str_name().trim_start_matches("RECORD_TYPE_")
                ),
            )),
            Err(s) => {
                ok = false;
                steps.push(step(
                    "dns",
                    false,
                    format!("{host}: {} (the service serves; its name is not published: redeploy to retry)", s.message()),
                ));
            }
        }
    }
    ok
}

/// Undeploy: the address records of `def`'s hostnames on `node`.
pub(crate) async fn unpublish(
    m: &Master,
    c: &Caller,
    node: &str,
    def: &ServiceDef,
    steps: &mut Vec<Step>,
) -> bool {
    if !m.config.dns {
        return true;
    }
    let why = format!("undeploy {}", def.name);
    let mut ok = true;
    for host in hostnames(def, &m.config.zone, false) {
        let Ok(Some(rel)) = record_name(m, &def.name, &host) else {
            continue;
        };
        for rtype in [dns::RecordType::A, dns::RecordType::Aaaa] {
            let del = dns::DeleteRecordsRequest {
                zone: m.config.zone.clone(),
                name: rel.clone(),
                r#type: rtype.into(),
                value: String::new(),
            };
            let r: Result<dns::ChangeResponse, _> =
                own(m, c, node, DELETE_RECORDS, &why, &del).await;
            match r {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => {
                    ok = false;
                    steps.push(step("dns", false, format!("{host}: {}", s.message())));
                }
            }
        }
        if ok {
            steps.push(step("dns", true, format!("{host}: records removed")));
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ComponentDef, RouteDef};

    fn def(routes: &[(&str, Mode)]) -> ServiceDef {
        ServiceDef {
            name: "docs".into(),
            node: String::new(),
            components: vec![ComponentDef {
                name: "site".into(),
                image: "r/x:1".into(),
                command: Vec::new(),
                env: Default::default(),
                volumes: Vec::new(),
                routes: routes
                    .iter()
                    .enumerate()
                    .map(|(i, (h, mode))| RouteDef {
                        name: format!("r{i}"),
                        port: 0,
                        mode: *mode,
                        hostname: (*h).to_owned(),
                    })
                    .collect(),
                health: None,
            }],
            snapshots: None,
        }
    }

    #[test]
    fn hostnames_default_like_the_agent_and_l7_filters() {
        let d = def(&[
            ("", Mode::L7),
            ("api.docs.svc.test", Mode::L4),
            ("DOCS.svc.test", Mode::L7),
        ]);
        assert_eq!(
            hostnames(&d, "svc.test", false),
            ["docs.svc.test", "api.docs.svc.test"]
        );
        assert_eq!(hostnames(&d, "svc.test", true), ["docs.svc.test"]);
    }

    #[test]
    fn node_addresses_give_an_ip_or_say_why_not() {
        let mut n = NodeRow {
            name: "a".into(),
            role: 0,
            address: "10.0.0.5:9444".into(),
            arch: String::new(),
            agent_version: String::new(),
            registered_at: 0,
            last_heartbeat_ms: 0,
            load: Default::default(),
            probe: None,
        };
        assert_eq!(node_ip(&n).unwrap().to_string(), "10.0.0.5");
        n.address = "[fd00::5]:9444".into();
        assert_eq!(node_ip(&n).unwrap().to_string(), "fd00::5");
        for bad in ["0.0.0.0:9444", "node.example:9444", ""] {
            n.address = bad.into();
            assert!(
                node_ip(&n).unwrap_err().contains("[master] address"),
                "{bad}"
            );
        }
    }
}
