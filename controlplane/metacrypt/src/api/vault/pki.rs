//! Vault's PKI secrets engine paths over the pki engine: `issue/<role>`,
//! `sign/<role>`, `sign-verbatim[/<role>]`, `revoke`, `ca`, `ca/pem`,
//! `ca_chain`, `crl`, `crl/pem`, `cert/<serial>`, `certs` (LIST),
//! `roles[/<name>]`, `root/generate/internal`, `tidy`, each the core call the
//! native REST makes (docs/design/pki.md §Vault facade).
//!
//! Invariant: a body's fields are translated inside the core call's decoder,
//! after the barrier and policy, as on the native routes: a caller without
//! rights gets 403 whatever it sent. A Vault field with no meaning here is
//! accepted only at Vault's default value; any other value, and any unknown
//! field, is a 400 naming it (nothing is silently dropped).

use serde_json::{Map, Value, json};

use super::decode::{Request, duration_secs};
use super::reply::Reply;
use crate::core::{Caller, Metacrypt, PublicPki};
use crate::engines::pki::model::{
    CaRequest, CertRecord, IssueRequest, Issued, KeyType, RevokeRequest, Role, Ttl,
};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;

/// A pki operation on a mount; bodies stay JSON until the core call decodes them.
pub(crate) enum Pki {
    Issue(String, Value),
    Sign(String, Value),
    /// `sign-verbatim` without a role signs under the role named `default`.
    SignVerbatim(String, Value),
    Revoke(Value),
    Ca {
        der: bool,
    },
    CaChain,
    Crl {
        der: bool,
    },
    Cert(String),
    ListCerts(Option<String>),
    ListRoles,
    ReadRole(String),
    WriteRole(String, Value),
    DeleteRole(String),
    RootGenerate(String, Value),
    Tidy,
}

/// The role `sign-verbatim` uses when the path names none.
const VERBATIM_ROLE: &str = "default";

fn invalid(field: &str, why: impl Into<String>) -> CryptError {
    CryptError::invalid(field, why)
}

/// Decodes a pki path, or `None` when the path is not one. `sign/<role>` is
/// transit's too: it is pki's only on a pki mount (`pki_mount`).
pub(crate) fn decode(
    method: &str,
    op: &str,
    parts: &[&str],
    list: bool,
    after: Option<&str>,
    b: &[u8],
    pki_mount: bool,
) -> Option<Result<Pki>> {
    let w = matches!(method, "POST" | "PUT");
    let named = |n: &str| !n.is_empty();
    Some(match (method, op, parts) {
        (_, "issue", [r]) if w && named(r) => body(b).map(|v| Pki::Issue((*r).to_owned(), v)),
        (_, "sign", [r]) if w && pki_mount && named(r) => {
            body(b).map(|v| Pki::Sign((*r).to_owned(), v))
        }
        (_, "sign-verbatim", []) if w => {
            body(b).map(|v| Pki::SignVerbatim(VERBATIM_ROLE.to_owned(), v))
        }
        (_, "sign-verbatim", [r]) if w && named(r) => {
            body(b).map(|v| Pki::SignVerbatim((*r).to_owned(), v))
        }
        (_, "revoke", []) if w => body(b).map(Pki::Revoke),
        ("GET", "ca", []) => Ok(Pki::Ca { der: true }),
        ("GET", "ca", ["pem"]) => Ok(Pki::Ca { der: false }),
        ("GET", "ca_chain", []) => Ok(Pki::CaChain),
        ("GET", "crl", []) => Ok(Pki::Crl { der: true }),
        ("GET", "crl", ["pem"]) => Ok(Pki::Crl { der: false }),
        ("GET", "cert", [s]) if named(s) => Ok(Pki::Cert((*s).to_owned())),
        // A plain GET lists as LIST does (Vault answers 405 there).
        ("GET", "certs", []) => Ok(Pki::ListCerts(after.map(str::to_owned))),
        ("GET", "roles", []) => Ok(Pki::ListRoles),
        ("GET", "roles", [n]) if named(n) && !list => Ok(Pki::ReadRole((*n).to_owned())),
        (_, "roles", [n]) if w && named(n) => body(b).map(|v| Pki::WriteRole((*n).to_owned(), v)),
        ("DELETE", "roles", [n]) if named(n) => Ok(Pki::DeleteRole((*n).to_owned())),
        (_, "root", ["generate", kind]) if w => {
            body(b).map(|v| Pki::RootGenerate((*kind).to_owned(), v))
        }
        (_, "tidy", []) if w => body(b).map(|_| Pki::Tidy),
        _ => return None,
    })
}

/// A JSON body that may be empty (then `{}`); an object, else 400.
fn body(b: &[u8]) -> Result<Value> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice(b) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(_) => Err(invalid("body", "a JSON object")),
        Err(e) => Err(invalid("body", e.to_string())),
    }
}

/// A Vault request body's fields, taken one by one; what is left is refused.
struct Fields(Map<String, Value>);

impl Fields {
    fn new(v: Value) -> Self {
        match v {
            Value::Object(o) => Self(o),
            _ => Self(Map::new()),
        }
    }

    fn take(&mut self, k: &str) -> Option<Value> {
        self.0.remove(k).filter(|v| !v.is_null())
    }

    fn string(&mut self, k: &str) -> Result<Option<String>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(k, "a string")),
        }
    }

    /// A list: a JSON array of strings or one comma-separated string (Vault takes both).
    fn list(&mut self, k: &str) -> Result<Vec<String>> {
        let items = match self.take(k) {
            None => return Ok(Vec::new()),
            Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_owned()).collect(),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    _ => Err(invalid(k, "a list of strings")),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => Err(invalid(k, "a list of strings"))?,
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }

    fn bool(&mut self, k: &str) -> Result<Option<bool>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" || s == "0" || s.is_empty() => Ok(Some(false)),
            Some(_) => Err(invalid(k, "true or false")),
        }
    }

    fn ttl(&mut self, k: &str) -> Result<Option<Ttl>> {
        match self.take(k) {
            None => Ok(None),
            Some(v) => match duration_secs(k, &v)? {
                0 => Ok(None),
                s => Ok(Some(Ttl(s))),
            },
        }
    }

    fn u64(&mut self, k: &str) -> Result<u64> {
        match self.take(k) {
            None => Ok(0),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| invalid(k, "a number")),
            Some(Value::String(s)) if s.is_empty() => Ok(0),
            Some(Value::String(s)) => s.parse().map_err(|_| invalid(k, "a number")),
            Some(_) => Err(invalid(k, "a number")),
        }
    }

    /// A field with no meaning here: accepted only empty, false or at
    /// Vault's default (`ok`).
    fn only(&mut self, k: &str, why: &str, ok: impl Fn(&Value) -> bool) -> Result<()> {
        match self.take(k) {
            None => Ok(()),
            Some(v) if empty(&v) || ok(&v) => Ok(()),
            Some(_) => Err(invalid(k, why.to_owned())),
        }
    }

    /// Fields accepted and ignored whatever their value.
    fn ignore(&mut self, ks: &[&str]) {
        for k in ks {
            self.0.remove(*k);
        }
    }

    fn finish(self) -> Result<()> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(invalid(k, "not supported by this facade")),
        }
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_u64() == Some(0),
        Value::Null => true,
    }
}

fn is_true(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || v.as_str() == Some("true")
}

/// The response format: PEM only (the certificate fields are PEM text).
fn pem_format(f: &mut Fields) -> Result<()> {
    f.only("format", "only pem", |v| v.as_str() == Some("pem"))?;
    // The key is always PKCS#8 PEM (Vault's `der` default gives SEC1/PKCS#1
    // PEM); both parse in every TLS stack.
    f.only("private_key_format", "der or pkcs8", |v| {
        matches!(v.as_str(), Some("der" | "pkcs8"))
    })
}

/// `issue/<role>` and `sign/<role>`: Vault's fields → the native request.
fn issue_request(v: Value, csr: bool) -> Result<IssueRequest> {
    let mut f = Fields::new(v);
    let common_name = f.string("common_name")?.unwrap_or_default();
    let alt_names = f.list("alt_names")?;
    let ip_sans = f.list("ip_sans")?;
    let ttl = f.ttl("ttl")?;
    let csr = match csr {
        true => Some(f.string("csr")?.ok_or_else(|| invalid("csr", "required"))?),
        false => None,
    };
    pem_format(&mut f)?;
    f.only(
        "exclude_cn_from_sans",
        "the common name is always a SAN",
        |_| false,
    )?;
    for k in [
        "uri_sans",
        "other_sans",
        "user_ids",
        "serial_number",
        "not_after",
    ] {
        f.only(k, "not supported by this facade", |_| false)?;
    }
    f.only("issuer_ref", "the role names the issuer", |v| {
        v.as_str() == Some("default")
    })?;
    f.ignore(&["remove_roots_from_chain", "name"]);
    f.finish()?;
    Ok(IssueRequest {
        common_name,
        alt_names,
        ip_sans,
        ttl,
        key_type: None,
        csr,
    })
}

/// `sign-verbatim`: the CSR's own names, still checked against the role.
fn verbatim_request(v: Value) -> Result<IssueRequest> {
    let mut f = Fields::new(v);
    let csr = f.string("csr")?.ok_or_else(|| invalid("csr", "required"))?;
    let ttl = f.ttl("ttl")?;
    pem_format(&mut f)?;
    f.only("key_usage", "the role decides key usage", |_| false)?;
    f.only("ext_key_usage", "the role decides key usage", |_| false)?;
    f.ignore(&["remove_roots_from_chain", "use_pss", "signature_bits"]);
    f.finish()?;
    Ok(IssueRequest {
        csr: Some(csr),
        ttl,
        ..IssueRequest::default()
    })
}

/// Vault's `key_type` + `key_bits` → the engine's key types.
fn key_types(kind: &str, bits: u64) -> Result<Vec<KeyType>> {
    Ok(match (kind, bits) {
        ("ec", 0 | 256) => vec![KeyType::EcP256],
        ("ec", 384) => vec![KeyType::EcP384],
        ("ed25519", 0) => vec![KeyType::Ed25519],
        ("rsa", 0 | 2048) => vec![KeyType::Rsa2048],
        ("rsa", 3072) => vec![KeyType::Rsa3072],
        ("rsa", 4096) => vec![KeyType::Rsa4096],
        ("any", 0) => vec![
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
            KeyType::Rsa2048,
            KeyType::Rsa3072,
            KeyType::Rsa4096,
        ],
        ("ec" | "rsa" | "ed25519" | "any", _) => {
            return Err(invalid("key_bits", format!("not offered for {kind}")));
        }
        _ => return Err(invalid("key_type", "rsa, ec, ed25519 or any")),
    })
}

/// The engine's key type → Vault's (`key_type`, `key_bits`).
fn vault_key(k: KeyType) -> (&'static str, u64) {
    match k {
        KeyType::EcP256 => ("ec", 256),
        KeyType::EcP384 => ("ec", 384),
        KeyType::Ed25519 => ("ed25519", 0),
        KeyType::Rsa2048 => ("rsa", 2048),
        KeyType::Rsa3072 => ("rsa", 3072),
        KeyType::Rsa4096 => ("rsa", 4096),
    }
}

/// Vault's default key usage for a role (accepted, and what is issued).
const KEY_USAGE: [&str; 3] = ["DigitalSignature", "KeyAgreement", "KeyEncipherment"];

/// `roles/<name>` written with Vault's fields and Vault's defaults (absent
/// `allow_localhost`, `allow_ip_sans`, wildcards and the client flag are
/// allowed; the key is RSA 2048) → the engine's role.
fn role_from_vault(v: Value) -> Result<Role> {
    let mut f = Fields::new(v);
    let kind = f.string("key_type")?.unwrap_or_else(|| "rsa".to_owned());
    let bits = f.u64("key_bits")?;
    let key_types = key_types(&kind, bits)?;
    let issuer = match f.string("issuer_ref")?.as_deref() {
        None | Some("" | "default") => "root".to_owned(),
        Some(n) => n.to_owned(),
    };
    let role = Role {
        issuer,
        allowed_domains: f.list("allowed_domains")?,
        allow_bare_domains: f.bool("allow_bare_domains")?.unwrap_or(false),
        allow_subdomains: f.bool("allow_subdomains")?.unwrap_or(false),
        allow_wildcard: f.bool("allow_wildcard_certificates")?.unwrap_or(true),
        allow_localhost: f.bool("allow_localhost")?.unwrap_or(true),
        allow_ip_sans: f.bool("allow_ip_sans")?.unwrap_or(true),
        key_type: key_types.first().copied(),
        key_types,
        ttl: f.ttl("ttl")?.unwrap_or(Ttl(86_400)),
        max_ttl: f.ttl("max_ttl")?.unwrap_or(Ttl(30 * 86_400)),
        server: f.bool("server_flag")?.unwrap_or(true),
        client: f.bool("client_flag")?.unwrap_or(true),
        no_store: f.bool("no_store")?.unwrap_or(false),
    };
    f.only(
        "enforce_hostnames",
        "host names are always enforced",
        is_true,
    )?;
    for k in ["use_csr_common_name", "use_csr_sans", "require_cn"] {
        f.only(k, "always true here", is_true)?;
    }
    f.only("key_usage", "the default key usage only", |v| {
        v == &json!(KEY_USAGE) || v.as_str() == Some(&KEY_USAGE.join(","))
    })?;
    for k in [
        "allow_any_name",
        "allow_glob_domains",
        "allow_token_displayname",
        "allowed_domains_template",
        "allowed_uri_sans",
        "allowed_other_sans",
        "allowed_serial_numbers",
        "allowed_user_ids",
        "code_signing_flag",
        "email_protection_flag",
        "ext_key_usage",
        "ext_key_usage_oids",
        "generate_lease",
        "organization",
        "ou",
        "country",
        "locality",
        "province",
        "street_address",
        "postal_code",
        "policy_identifiers",
        "basic_constraints_valid_for_non_ca",
        "no_store_metadata",
    ] {
        f.only(k, "not supported by this facade", |_| false)?;
    }
    // Vault's NotBefore back-dating, signature and CN-validation knobs:
    // the engine's own (30 s back-dating; the key's own signature).
    f.ignore(&[
        "name",
        "not_before_duration",
        "signature_bits",
        "use_pss",
        "cn_validations",
    ]);
    f.finish()?;
    Ok(role)
}

/// The engine's role in Vault's read shape.
fn role_to_vault(r: &Role) -> Value {
    let (kind, bits) = match r.key_types.as_slice() {
        [one] => vault_key(*one),
        _ => ("any", 0),
    };
    json!({
        "allowed_domains": r.allowed_domains,
        "allow_bare_domains": r.allow_bare_domains,
        "allow_subdomains": r.allow_subdomains,
        "allow_wildcard_certificates": r.allow_wildcard,
        "allow_localhost": r.allow_localhost,
        "allow_ip_sans": r.allow_ip_sans,
        "allow_any_name": false,
        "allow_glob_domains": false,
        "enforce_hostnames": true,
        "key_type": kind,
        "key_bits": bits,
        "key_usage": KEY_USAGE,
        "ext_key_usage": [],
        "ttl": r.ttl.0,
        "max_ttl": r.max_ttl.0,
        "server_flag": r.server,
        "client_flag": r.client,
        "code_signing_flag": false,
        "email_protection_flag": false,
        "no_store": r.no_store,
        "generate_lease": false,
        "issuer_ref": if r.issuer == "root" { "default" } else { r.issuer.as_str() },
        "require_cn": true,
        "use_csr_common_name": true,
        "use_csr_sans": true,
    })
}

/// A hex serial in Vault's form: lowercase pairs joined by `:`.
fn colon(hex: &str) -> String {
    let b = hex.as_bytes();
    b.chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// Vault writes serials with `:` or `-`; the engine takes `:`.
fn native_serial(s: &str) -> String {
    s.replace('-', ":")
}

/// Each certificate of a PEM chain, as its own PEM text.
fn pem_blocks(chain: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    chain
        .split_inclusive(END)
        .map(str::trim)
        .filter(|b| b.ends_with(END))
        .map(str::to_owned)
        .collect()
}

fn issued_to_vault(i: Issued) -> Value {
    let chain = pem_blocks(&i.ca_chain);
    let mut d = json!({
        "certificate": i.certificate.trim(),
        "issuing_ca": chain.first().cloned().unwrap_or_default(),
        "ca_chain": chain,
        "serial_number": colon(&i.serial),
        "expiration": i.not_after,
    });
    if let Some(k) = i.private_key {
        d["private_key"] = k.trim().into();
        d["private_key_type"] = vault_key(i.key_type).0.into();
    }
    d
}

fn cert_to_vault(r: CertRecord) -> Value {
    let t = r.revoked_at.unwrap_or(0);
    json!({
        "certificate": r.certificate.trim(),
        "serial_number": colon(&r.serial),
        "revocation_time": t,
        "revocation_time_rfc3339": if t == 0 { String::new() } else { mc_kit::clock::rfc3339(t) },
        "issuer_id": r.issuer.name,
        "expiration": r.not_after,
    })
}

/// The serial of a PEM certificate, in Vault's form ("" if it does not parse).
fn pem_serial(pem: &str) -> String {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .ok()
        .and_then(|(_, p)| p.parse_x509().ok().map(|c| hex(c.raw_serial())))
        .map(|h| colon(&h))
        .unwrap_or_default()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn public(p: PublicPki, der_type: &'static str) -> Reply {
    match p {
        PublicPki::Pem(s) => Reply::Body("application/pem-certificate-chain", s.into_bytes()),
        PublicPki::Der(d) => Reply::Body(der_type, d),
    }
}

/// `root/generate/internal`: Vault's fields → the native request.
fn root_request(kind: &str, v: Value) -> Result<CaRequest> {
    if kind != "internal" {
        return Err(invalid(
            "type",
            "only internal (the CA key never leaves Metacrypt)",
        ));
    }
    let mut f = Fields::new(v);
    let kt = f.string("key_type")?.unwrap_or_else(|| "rsa".to_owned());
    let bits = f.u64("key_bits")?;
    let key_type = match key_types(&kt, bits)?.as_slice() {
        [one] => *one,
        _ => return Err(invalid("key_type", "rsa, ec or ed25519")),
    };
    let req = CaRequest {
        common_name: f.string("common_name")?.unwrap_or_default(),
        key_type,
        ttl: f.ttl("ttl")?.unwrap_or(CaRequest::default().ttl),
    };
    pem_format(&mut f)?;
    f.ignore(&["issuer_name", "key_name", "max_path_length"]);
    f.finish()?;
    Ok(req)
}

/// One pki core call and its answer in Vault's shape.
pub(crate) fn run(m: &Metacrypt, c: &Caller, mount: &str, p: Pki) -> Result<Reply> {
    use Reply::{Data, Empty};
    const CERT_DER: &str = "application/pkix-cert";
    const CRL_DER: &str = "application/pkix-crl";
    Ok(match p {
        Pki::Issue(role, v) => Data(issued_to_vault(
            m.pki_issue(c, mount, &role, || issue_request(v, false))?,
        )),
        Pki::Sign(role, v) => Data(issued_to_vault(
            m.pki_sign(c, mount, &role, || issue_request(v, true))?,
        )),
        Pki::SignVerbatim(role, v) => Data(issued_to_vault(
            m.pki_sign(c, mount, &role, || verbatim_request(v))?,
        )),
        Pki::Revoke(v) => {
            let r = m.pki_revoke(c, mount, || {
                let mut f = Fields::new(v);
                let serial = f
                    .string("serial_number")?
                    .ok_or_else(|| invalid("serial_number", "required"))?;
                f.only("certificate", "revoke by serial_number", |_| false)?;
                f.finish()?;
                Ok(RevokeRequest {
                    serial: native_serial(&serial),
                    reason: Default::default(),
                })
            })?;
            Data(json!({
                "revocation_time": r.revoked_at,
                "revocation_time_rfc3339": mc_kit::clock::rfc3339(r.revoked_at),
                "state": "revoked",
            }))
        }
        Pki::Ca { der } => public(m.pki_public_cert(mount, None, der)?, CERT_DER),
        Pki::CaChain => public(
            PublicPki::Pem(m.pki_public_chain(mount, None, None)?),
            CERT_DER,
        ),
        Pki::Crl { der } => public(m.pki_public_crl(mount, None, None, der)?, CRL_DER),
        Pki::Cert(serial) => match serial.as_str() {
            // Vault's special serials: the CA, its chain, the CRL.
            "ca" => Data(json!({"certificate": pem_text(m.pki_public_cert(mount, None, false)?)})),
            "ca_chain" => {
                let chain = m.pki_public_chain(mount, None, None)?;
                Data(json!({"certificate": chain.trim(), "ca_chain": chain.trim()}))
            }
            "crl" => {
                Data(json!({"certificate": pem_text(m.pki_public_crl(mount, None, None, false)?)}))
            }
            s => Data(cert_to_vault(m.pki_cert(c, mount, &native_serial(s))?)),
        },
        Pki::ListCerts(after) => {
            let after = after.map(|a| native_serial(&a));
            let keys: Vec<String> = m
                .pki_certs(c, mount, || Ok(after))?
                .iter()
                .map(|s| colon(s))
                .collect();
            list(keys)?
        }
        Pki::ListRoles => list(m.pki_roles(c, mount)?)?,
        Pki::ReadRole(name) => Data(role_to_vault(&m.pki_role(c, mount, &name)?)),
        Pki::WriteRole(name, v) => Data(role_to_vault(
            &m.pki_put_role(c, mount, &name, || role_from_vault(v))?,
        )),
        Pki::DeleteRole(name) => {
            m.pki_delete_role(c, mount, &name)?;
            Empty
        }
        Pki::RootGenerate(kind, v) => {
            let i = m.pki_root_generate(c, mount, || root_request(&kind, v))?;
            Data(json!({
                "certificate": i.certificate.trim(),
                "issuing_ca": i.certificate.trim(),
                "serial_number": pem_serial(&i.certificate),
                "expiration": i.not_after,
                "issuer_name": i.name,
            }))
        }
        Pki::Tidy => {
            // Vault's selectors (`tidy_cert_store`, `safety_buffer`, …) are
            // not read: the one tidy here removes expired certificates.
            let n = m.pki_tidy(c, mount)?;
            Reply::Warned(202, vec![format!("tidy removed {n} expired certificates")])
        }
    })
}

fn pem_text(p: PublicPki) -> String {
    match p {
        PublicPki::Pem(s) => s.trim().to_owned(),
        PublicPki::Der(_) => String::new(),
    }
}

/// A LIST answer: `{"keys": […]}`, or 404 when empty (as Vault).
fn list(keys: Vec<String>) -> Result<Reply> {
    if keys.is_empty() {
        return Err(CryptError::NotFound(String::new()));
    }
    Ok(Reply::Data(json!({ "keys": keys })))
}

/// A decoded pki request on `mount`.
pub(crate) fn request(mount: &str, p: Result<Pki>) -> Result<Request> {
    p.map(|p| Request::Pki(mount.to_owned(), Box::new(p)))
}

#[cfg(test)]
#[path = "pki_tests.rs"]
mod tests;
