//! Request decoding for the Vault facade: method, path (after `/v1/`),
//! query and body → one [`Request`] naming the core call. Pure (no state,
//! no I/O), so unit tests and the `vault_request` fuzz target call it.
//!
//! Invariant: decoding never panics and refuses with a 400 naming the
//! field, the query parameter or the path; what it accepts is exactly the
//! core request the native REST would build for the same operation.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::core::transit::{
    ConfigKey, CreateKey, DatakeyRequest, DecryptItem, HashRequest, RandomRequest, RewrapItem,
    SignItem, VerifyItem, flexible_u32,
};
use crate::core::{
    Batched, EncryptRequest, HmacRequest, KvConfigInput, KvDelete, KvMetadataInput, KvWrite,
    MountInput, SignRequest, UnsealInputBody,
};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;

/// Mount names the facade never treats as a mount: the first path segments
/// of other trees on the same listener (MCIAS, native Metacrypt, Vault's
/// own system paths; `pki`, `ssh` and `registry` are the public PKI and SSH CA
/// routes and MCR's admin API).
pub const RESERVED: &[&str] = &[
    "sys",
    "auth",
    "iam",
    "sso",
    "crypt",
    "identity",
    "cubbyhole",
    "oauth2",
    "ui",
    "pki",
    "ssh",
    "registry",
];

/// `sys/health`'s status overrides, as Vault's query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCodes {
    pub active: u16,
    pub sealed: u16,
    pub uninit: u16,
}

/// One decoded facade request: the core call it becomes.
pub(crate) enum Request {
    Health(HealthCodes),
    SealStatus,
    Unseal(UnsealInputBody),
    Seal,
    MountList,
    MountCreate(MountInput),
    MountDelete(String),
    LookupSelf,
    Transit(String, Box<Transit>),
    Kv(String, Box<Kv>),
    Pki(String, Box<super::pki::Pki>),
}

/// A transit operation on a mount.
pub(crate) enum Transit {
    ListKeys,
    CreateKey(String, CreateKey),
    ReadKey(String),
    DeleteKey(String),
    ConfigKey(String, ConfigKey),
    RotateKey(String),
    TrimKey(String, Option<u32>),
    Export(String, String, Option<String>),
    Encrypt(String, EncryptRequest),
    Decrypt(String, Batched<DecryptItem>),
    Rewrap(String, Batched<RewrapItem>),
    Datakey(String, String, Batched<DatakeyRequest>),
    Sign(String, SignRequest<SignItem>),
    Verify(String, SignRequest<VerifyItem>),
    Hmac(String, HmacRequest),
    Random(RandomRequest),
    Hash(HashRequest),
}

/// A kv (v2) operation on a mount; paths are relative to the tree.
pub(crate) enum Kv {
    Read(String, u64),
    Write(String, KvWrite),
    Patch(String, KvWrite),
    DeleteLatest(String),
    Delete(String, KvDelete),
    Undelete(String, KvDelete),
    Destroy(String, KvDelete),
    ReadMetadata(String),
    List(String),
    WriteMetadata(String, KvMetadataInput),
    DeleteMetadata(String),
    ReadConfig,
    WriteConfig(KvConfigInput),
}

/// Whether `method path?query body` decodes, on a mount of any type or on
/// a pki mount (for the fuzz target).
pub fn accepts(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> bool {
    let any = decode(method, path, query, body, false).is_ok();
    decode(method, path, query, body, true).is_ok() || any
}

fn invalid(field: &str, why: impl Into<String>) -> CryptError {
    CryptError::invalid(field, why)
}

fn unsupported(path: &str) -> CryptError {
    CryptError::NotFound(format!("unsupported path: {path}"))
}

/// A JSON body that may be empty (then `T::default()`), as Vault takes it.
fn body<T: DeserializeOwned + Default>(b: &[u8]) -> Result<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| invalid("body", e.to_string()))
}

/// `%XX` escapes decoded; the result must be UTF-8 without NUL.
fn percent_decode(path: &str) -> Result<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid("path", "a bad %-escape"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(out).map_err(|_| invalid("path", "not UTF-8"))?;
    if s.contains('\0') {
        return Err(invalid("path", "contains NUL"));
    }
    Ok(s)
}

/// The query as pairs; only the names in `allowed` are taken.
fn query<'a>(raw: Option<&'a str>, allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !allowed.contains(&k) {
            return Err(invalid(k, "unknown query parameter"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn flag(v: &str, name: &str) -> Result<bool> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(name, "true or false")),
    }
}

fn is_list(q: &[(&str, &str)]) -> Result<bool> {
    let mut list = false;
    for (k, v) in q {
        if *k == "list" {
            list = flag(v, "list")?;
        }
    }
    Ok(list)
}

fn health(q: Option<&str>) -> Result<HealthCodes> {
    let mut codes = HealthCodes {
        active: 200,
        sealed: 503,
        uninit: 501,
    };
    let names = [
        "standbyok",
        "perfstandbyok",
        "activecode",
        "standbycode",
        "drsecondarycode",
        "performancestandbycode",
        "sealedcode",
        "uninitcode",
    ];
    for (k, v) in query(q, &names)? {
        let code = || -> Result<u16> {
            v.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| invalid(k, "an HTTP status code"))
        };
        match k {
            "activecode" => codes.active = code()?,
            "sealedcode" => codes.sealed = code()?,
            "uninitcode" => codes.uninit = code()?,
            "standbyok" | "perfstandbyok" => {
                flag(v, k)?;
            }
            // A single node is never a standby: accepted, unused.
            _ => {
                code()?;
            }
        }
    }
    Ok(codes)
}

/// `POST sys/unseal`: Vault's `{key, reset}`; the key is a passphrase or a share.
#[derive(Default, Deserialize)]
#[serde(default)]
struct VaultUnseal {
    key: Option<String>,
    reset: bool,
    migrate: bool,
}

fn unseal(b: &[u8]) -> Result<UnsealInputBody> {
    let u: VaultUnseal = body(b)?;
    if u.migrate {
        return Err(invalid("migrate", "seal migration is not offered"));
    }
    if !u.reset && u.key.is_none() {
        return Err(invalid("key", "required"));
    }
    let (passphrase, share) = match u.key {
        Some(k) if k.starts_with("mcs1-") => (None, Some(k)),
        Some(k) => (Some(k), None),
        None => (None, None),
    };
    Ok(UnsealInputBody {
        passphrase,
        share,
        reset: u.reset,
    })
}

/// `POST sys/mounts/<name>`: Vault's `{type, description, options, config}`.
#[derive(Default, Deserialize)]
#[serde(default)]
struct VaultMount {
    #[serde(rename = "type")]
    kind: Option<String>,
    description: Option<String>,
    options: Option<Map<String, Value>>,
    // Vault's tuning and plugin fields (hvac sends them, often null) have
    // no meaning here; they are accepted and ignored.
    config: Option<Value>,
    local: Option<bool>,
    seal_wrap: Option<bool>,
    plugin_name: Option<String>,
    plugin_version: Option<String>,
}

fn mount_create(name: &str, b: &[u8]) -> Result<MountInput> {
    let m: VaultMount = body(b)?;
    let version = m
        .options
        .as_ref()
        .and_then(|o| o.get("version"))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let kind = match (m.kind.as_deref().unwrap_or(""), version.as_deref()) {
        ("kv" | "kv-v2", None | Some("2")) => "kv",
        ("kv", Some(_)) => return Err(invalid("options.version", "only KV version 2")),
        ("transit", _) => "transit",
        ("user", _) => "user",
        ("pki", _) => "pki",
        ("", _) => return Err(invalid("type", "required")),
        (other, _) => return Err(invalid("type", format!("unsupported engine: {other}"))),
    };
    let _ = (
        m.config,
        m.local,
        m.seal_wrap,
        m.plugin_name,
        m.plugin_version,
    );
    Ok(MountInput {
        name: name.to_owned(),
        kind: kind.to_owned(),
        description: m.description.unwrap_or_default(),
        config: None,
    })
}

/// `POST keys/<name>`: Vault's create fields; convergent encryption is refused.
fn create_key(b: &[u8]) -> Result<CreateKey> {
    let v: Value = body(b)?;
    if v.get("convergent_encryption") == Some(&Value::Bool(true)) {
        return Err(invalid(
            "convergent_encryption",
            "convergent encryption is not offered",
        ));
    }
    let mut v = v;
    if let Value::Object(o) = &mut v {
        // Vault's false default; the native request does not name it.
        if o.get("convergent_encryption") == Some(&Value::Bool(false)) {
            o.remove("convergent_encryption");
        }
    }
    serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Trim {
    #[serde(deserialize_with = "flexible_u32")]
    min_available_version: Option<u32>,
}

/// `POST data/<path>`: `{data, options: {cas}}` (Vault also takes `version`).
fn kv_write(b: &[u8]) -> Result<KvWrite> {
    let mut v: Value = body(b)?;
    if v.is_null() {
        v = Value::Object(Map::new());
    }
    if let Value::Object(o) = &mut v {
        o.remove("version");
        if !o.contains_key("data") {
            return Err(invalid("data", "required"));
        }
    }
    serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))
}

/// A Vault duration in whole seconds: a number, a numeric string, or Go's
/// form (`90s`, `15m`, `1h30m`, `1h0m0s`, and `d` for days as Vault's
/// parser takes); `""` is 0.
pub(crate) fn duration_secs(field: &str, v: &Value) -> Result<u64> {
    let bad = || invalid(field, "not a duration (seconds, or e.g. 90s, 15m, 1h30m)");
    let t = match v {
        Value::Number(n) => return n.as_u64().ok_or_else(bad),
        Value::String(t) => t.trim(),
        _ => return Err(bad()),
    };
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return if t.is_empty() {
            Ok(0)
        } else {
            t.parse().map_err(|_| bad())
        };
    }
    let (mut total, mut num) = (0u64, None::<u64>);
    for b in t.bytes() {
        let unit = match b {
            b'0'..=b'9' => {
                let n = num
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')));
                num = Some(n.ok_or_else(bad)?);
                continue;
            }
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(bad)?;
    }
    if num.is_some() {
        return Err(bad());
    }
    Ok(total)
}

/// Moves `delete_version_after` (a Vault duration) into seconds, in place.
fn delete_after_field(v: &mut Value) -> Result<()> {
    if let Value::Object(o) = v {
        match o.remove("delete_version_after") {
            None | Some(Value::Null) => {}
            Some(d) => {
                let secs = duration_secs("delete_version_after", &d)?;
                o.insert("delete_version_after".into(), secs.into());
            }
        }
    }
    Ok(())
}

/// `POST metadata/<path>`.
fn kv_metadata(b: &[u8]) -> Result<KvMetadataInput> {
    let mut v: Value = body(b)?;
    delete_after_field(&mut v)?;
    if v.is_null() {
        v = Value::Object(Map::new());
    }
    serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))
}

/// `POST config`.
fn kv_config(b: &[u8]) -> Result<KvConfigInput> {
    let mut v: Value = body(b)?;
    delete_after_field(&mut v)?;
    if v.is_null() {
        v = Value::Object(Map::new());
    }
    serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))
}

fn write_method(method: &str) -> bool {
    matches!(method, "POST" | "PUT")
}

/// Decodes one facade request. `path` is the request path after `/v1/`
/// (still %-encoded); `query` the raw query string; `pki_mount`: the mount
/// is a pki mount (which makes `sign/<name>` pki's, not transit's).
pub(crate) fn decode(
    method: &str,
    path: &str,
    q: Option<&str>,
    b: &[u8],
    pki_mount: bool,
) -> Result<Request> {
    let full = percent_decode(path)?;
    let (first, rest) = full.split_once('/').unwrap_or((full.as_str(), ""));
    match first {
        "sys" => sys(method, rest, q, b),
        "auth" => match (method, rest) {
            ("GET", "token/lookup-self") => {
                query(q, &[])?;
                Ok(Request::LookupSelf)
            }
            _ => Err(unsupported(&full)),
        },
        m if RESERVED.contains(&m) || m.is_empty() => Err(unsupported(&full)),
        mount => engine(method, mount, rest, q, b, &full, pki_mount),
    }
}

fn sys(method: &str, rest: &str, q: Option<&str>, b: &[u8]) -> Result<Request> {
    match (method, rest) {
        ("GET" | "HEAD", "health") => Ok(Request::Health(health(q)?)),
        ("GET", "seal-status") => {
            query(q, &[])?;
            Ok(Request::SealStatus)
        }
        ("POST" | "PUT", "unseal") => Ok(Request::Unseal(unseal(b)?)),
        ("POST" | "PUT", "seal") => Ok(Request::Seal),
        ("GET", "mounts") => {
            query(q, &[])?;
            Ok(Request::MountList)
        }
        (m, r) if r.starts_with("mounts/") => {
            let name = r.trim_start_matches("mounts/").trim_end_matches('/');
            match m {
                "POST" | "PUT" => Ok(Request::MountCreate(mount_create(name, b)?)),
                "DELETE" => Ok(Request::MountDelete(name.to_owned())),
                _ => Err(unsupported(&format!("sys/{r}"))),
            }
        }
        (_, r) => Err(unsupported(&format!("sys/{r}"))),
    }
}

/// The first path segments only pki answers (`sign` is shared with transit).
const PKI_OPS: &[&str] = &[
    "issue",
    "sign-verbatim",
    "revoke",
    "ca",
    "ca_chain",
    "crl",
    "cert",
    "certs",
    "roles",
    "root",
    "tidy",
];

fn engine(
    method: &str,
    mount: &str,
    rest: &str,
    q: Option<&str>,
    b: &[u8],
    full: &str,
    pki_mount: bool,
) -> Result<Request> {
    let (op, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let parts: Vec<&str> = match tail {
        "" => vec![],
        t => t.split('/').collect(),
    };
    if PKI_OPS.contains(&op) || (op == "sign" && pki_mount) {
        let qs = query(q, &["list", "after"])?;
        let list = is_list(&qs)?;
        let after = qs.iter().find(|(k, _)| *k == "after").map(|(_, v)| *v);
        if let Some(p) = super::pki::decode(method, op, &parts, list, after, b, pki_mount) {
            return super::pki::request(mount, p);
        }
        if op != "sign" {
            return Err(unsupported(full));
        }
    }
    let w = write_method(method);
    let t = |op: Transit| Ok(Request::Transit(mount.to_owned(), Box::new(op)));
    let k = |op: Kv| Ok(Request::Kv(mount.to_owned(), Box::new(op)));
    let name = |i: usize| -> Result<String> {
        parts
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned())
            .ok_or_else(|| invalid("name", "missing from the path"))
    };
    let kv_path = || tail.trim_end_matches('/').to_owned();
    match (method, op, parts.len()) {
        // transit
        ("GET", "keys", 0) if is_list(&query(q, &["list"])?)? => t(Transit::ListKeys),
        (_, "keys", 1) if w => t(Transit::CreateKey(name(0)?, create_key(b)?)),
        ("GET", "keys", 1) => t(Transit::ReadKey(name(0)?)),
        ("DELETE", "keys", 1) => t(Transit::DeleteKey(name(0)?)),
        (_, "keys", 2) if w => match parts[1] {
            "config" => t(Transit::ConfigKey(name(0)?, body(b)?)),
            "rotate" => t(Transit::RotateKey(name(0)?)),
            "trim" => t(Transit::TrimKey(
                name(0)?,
                body::<Trim>(b)?.min_available_version,
            )),
            _ => Err(unsupported(full)),
        },
        ("GET", "export", 2 | 3) => t(Transit::Export(
            name(0)?,
            name(1)?,
            parts.get(2).map(|s| (*s).to_owned()),
        )),
        (_, "encrypt", 1) if w => t(Transit::Encrypt(name(0)?, body(b)?)),
        (_, "decrypt", 1) if w => t(Transit::Decrypt(name(0)?, body(b)?)),
        (_, "rewrap", 1) if w => t(Transit::Rewrap(name(0)?, body(b)?)),
        (_, "datakey", 2) if w => t(Transit::Datakey(name(0)?, name(1)?, body(b)?)),
        (_, "sign", 1 | 2) if w => {
            let mut r: SignRequest<SignItem> = body(b)?;
            if parts.len() == 2 {
                r.params.hash_algorithm = Some(name(1)?);
            }
            t(Transit::Sign(name(0)?, r))
        }
        (_, "verify", 1 | 2) if w => {
            let mut r: SignRequest<VerifyItem> = body(b)?;
            if parts.len() == 2 {
                r.params.hash_algorithm = Some(name(1)?);
            }
            t(Transit::Verify(name(0)?, r))
        }
        (_, "hmac", 1 | 2) if w => {
            let mut r: HmacRequest = body(b)?;
            if parts.len() == 2 {
                r.params.algorithm = Some(name(1)?);
            }
            t(Transit::Hmac(name(0)?, r))
        }
        (_, "random", 0 | 1) if w => {
            let mut r: RandomRequest = body(b)?;
            if parts.len() == 1 {
                r.url_bytes = Some(name(0)?);
            }
            t(Transit::Random(r))
        }
        (_, "hash", 0 | 1) if w => {
            let mut r: HashRequest = body(b)?;
            if parts.len() == 1 {
                r.algorithm = Some(name(0)?);
            }
            t(Transit::Hash(r))
        }
        // kv v2
        ("GET", "data", n) if n > 0 => {
            let mut version = 0;
            for (_, v) in query(q, &["version"])? {
                version = v
                    .parse()
                    .map_err(|_| invalid("version", "a non-negative integer"))?;
            }
            k(Kv::Read(kv_path(), version))
        }
        (_, "data", n) if n > 0 && w => k(Kv::Write(kv_path(), kv_write(b)?)),
        ("PATCH", "data", n) if n > 0 => k(Kv::Patch(kv_path(), kv_write(b)?)),
        ("DELETE", "data", n) if n > 0 => k(Kv::DeleteLatest(kv_path())),
        (_, "delete", n) if n > 0 && w => k(Kv::Delete(kv_path(), body(b)?)),
        (_, "undelete", n) if n > 0 && w => k(Kv::Undelete(kv_path(), body(b)?)),
        (_, "destroy", n) if n > 0 && w => k(Kv::Destroy(kv_path(), body(b)?)),
        ("GET", "metadata", _) => {
            let list = is_list(&query(q, &["list"])?)?;
            match (list, kv_path()) {
                (true, p) => k(Kv::List(p)),
                (false, p) if p.is_empty() => k(Kv::List(p)),
                (false, p) => k(Kv::ReadMetadata(p)),
            }
        }
        (_, "metadata", n) if n > 0 && w => k(Kv::WriteMetadata(kv_path(), kv_metadata(b)?)),
        ("DELETE", "metadata", n) if n > 0 => k(Kv::DeleteMetadata(kv_path())),
        ("GET", "config", 0) => k(Kv::ReadConfig),
        (_, "config", 0) if w => k(Kv::WriteConfig(kv_config(b)?)),
        _ => Err(unsupported(full)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(method: &str, path: &str, q: Option<&str>, b: &str) -> String {
        match decode(method, path, q, b.as_bytes(), false) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    fn tr(r: Request) -> (String, Transit) {
        match r {
            Request::Transit(m, t) => (m, *t),
            _ => panic!("not transit"),
        }
    }

    fn kv(r: Request) -> (String, Kv) {
        match r {
            Request::Kv(m, k) => (m, *k),
            _ => panic!("not kv"),
        }
    }

    #[test]
    fn transit_and_kv_paths_decode_to_their_core_calls() {
        let ok = |m: &str, p: &str, q: Option<&str>, b: &str| {
            decode(m, p, q, b.as_bytes(), false).unwrap_or_else(|e| panic!("{m} {p}: {e}"))
        };
        assert!(matches!(
            tr(ok("POST", "transit/encrypt/k", None, r#"{"plaintext":"aGk="}"#)),
            (m, Transit::Encrypt(n, _)) if m == "transit" && n == "k"
        ));
        assert!(matches!(
            tr(ok("PUT", "t/datakey/wrapped/k", None, "")),
            (_, Transit::Datakey(kind, n, _)) if kind == "wrapped" && n == "k"
        ));
        assert!(matches!(
            tr(ok("POST", "t/sign/k/sha2-512", None, r#"{"input":"aGk="}"#)),
            (_, Transit::Sign(_, r)) if r.params.hash_algorithm.as_deref() == Some("sha2-512")
        ));
        assert!(matches!(
            tr(ok("GET", "t/keys", Some("list=true"), "")),
            (_, Transit::ListKeys)
        ));
        assert!(matches!(
            tr(ok(
                "POST",
                "t/keys/k/trim",
                None,
                r#"{"min_available_version":"2"}"#
            )),
            (_, Transit::TrimKey(_, Some(2)))
        ));
        assert!(matches!(
            kv(ok("GET", "secret/data/a/b%20c", Some("version=3"), "")),
            (_, Kv::Read(p, 3)) if p == "a/b c"
        ));
        assert!(matches!(
            kv(ok("POST", "secret/data/a", None, r#"{"data":{"x":1},"options":{"cas":0}}"#)),
            (_, Kv::Write(p, w)) if p == "a" && w.options.cas == Some(0)
        ));
        assert!(matches!(
            kv(ok("GET", "secret/metadata/", Some("list=true"), "")),
            (_, Kv::List(p)) if p.is_empty()
        ));
        assert!(matches!(
            kv(ok("GET", "secret/metadata/dir/", Some("list=true"), "")),
            (_, Kv::List(p)) if p == "dir"
        ));
        assert!(matches!(
            kv(ok("POST", "secret/metadata/a", None, r#"{"max_versions":3,"delete_version_after":"0s","cas_required":false}"#)),
            (_, Kv::WriteMetadata(_, m)) if m.max_versions == Some(3)
        ));
        assert!(matches!(
            kv(ok("POST", "secret/metadata/a", None, r#"{"delete_version_after":"1h0m30s"}"#)),
            (_, Kv::WriteMetadata(_, m)) if m.delete_version_after == Some(3630)
        ));
        assert!(matches!(
            kv(ok("POST", "secret/config", None, r#"{"delete_version_after":90}"#)),
            (_, Kv::WriteConfig(c)) if c.delete_version_after == Some(90)
        ));
        assert!(matches!(
            ok("POST", "sys/mounts/transit", None, r#"{"type":"transit","config":{},"options":null}"#),
            Request::MountCreate(m) if m.kind == "transit" && m.name == "transit"
        ));
        assert!(matches!(
            ok(
                "GET",
                "sys/health",
                Some("standbyok=true&sealedcode=204"),
                ""
            ),
            Request::Health(HealthCodes { sealed: 204, .. })
        ));
    }

    #[test]
    fn vault_durations_read_as_seconds() {
        let secs = |v: Value| duration_secs("d", &v);
        for (text, want) in [
            ("", 0),
            ("0s", 0),
            ("45", 45),
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("1h0m0s", 3600),
            ("2d", 172_800),
        ] {
            assert_eq!(secs(Value::from(text)).ok(), Some(want), "{text}");
        }
        assert_eq!(secs(Value::from(7)).ok(), Some(7));
        for bad in ["1x", "h", "1h30", "-1s", "99999999999999999999s"] {
            assert!(secs(Value::from(bad)).is_err(), "{bad}");
        }
        assert!(secs(Value::from(-3)).is_err());
        assert!(secs(Value::Bool(true)).is_err());
    }

    #[test]
    fn bad_requests_are_refused_by_name() {
        assert_eq!(
            err("GET", "secret/data/a", Some("version=x"), ""),
            "version: a non-negative integer"
        );
        assert_eq!(
            err("GET", "secret/data/a", Some("bogus=1"), ""),
            "bogus: unknown query parameter"
        );
        assert_eq!(
            err(
                "POST",
                "t/keys/k",
                None,
                r#"{"type":"aes256-gcm96","convergent_encryption":true,"derived":true}"#
            ),
            "convergent_encryption: convergent encryption is not offered"
        );
        assert!(err("POST", "t/encrypt/k", None, "{").starts_with("body: "));
        assert_eq!(err("POST", "secret/data/a", None, "{}"), "data: required");
        assert_eq!(
            err(
                "POST",
                "secret/metadata/a",
                None,
                r#"{"delete_version_after":"1x"}"#
            ),
            "delete_version_after: not a duration (seconds, or e.g. 90s, 15m, 1h30m)"
        );
        assert_eq!(
            err(
                "POST",
                "sys/mounts/k",
                None,
                r#"{"type":"kv","options":{"version":"1"}}"#
            ),
            "options.version: only KV version 2"
        );
        assert_eq!(err("GET", "t/data/a%zz", None, ""), "path: a bad %-escape");
        assert_eq!(
            err("GET", "crypt/keys/k", None, ""),
            "unsupported path: crypt/keys/k"
        );
        assert_eq!(
            err("POST", "t/frobnicate/k", None, "{}"),
            "unsupported path: t/frobnicate/k"
        );
        assert_eq!(
            err("GET", "sys/health", Some("sealedcode=9999"), ""),
            "sealedcode: an HTTP status code"
        );
        assert_eq!(err("POST", "sys/unseal", None, "{}"), "key: required");
    }
}
