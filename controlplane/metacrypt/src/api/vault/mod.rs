//! The Vault-shaped HTTP facade (`/v1/sys/health|seal-status|unseal|seal|
//! mounts`, `/v1/auth/token/lookup-self`, `/v1/<mount>/…` for transit, kv v2
//! and pki ([`pki`])), so hvac and other Vault clients work unchanged. A thin adapter:
//! [`decode`] turns the request into the core request, [`run`] makes the
//! one core call the native REST makes, [`reply`] wraps the answer in
//! Vault's envelope and errors (`{"errors": […]}`, Vault's status codes).
//!
//! Invariant: every engine and admin route sits behind [`vault_unsealed`]:
//! while sealed it answers 503 `{"errors":["Vault is sealed"]}` before its
//! path, query or body is read; only health, seal-status, unseal and the
//! pki reads of public rows (CA, chain, CRL) answer.
//! The auth map holds every route in [`ROUTES`] in the Vault dialect.

pub mod decode;
mod pki;
mod reply;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use mc_service::auth::Requirement;
use serde_json::{Map, Value, json};

use self::decode::{Kv, Request, Transit, decode};
use self::reply::{Reply, error, sealed};
use super::rest::SYS_BODY_LIMIT;
use super::rest_engines::ENGINE_BODY_LIMIT;
use crate::core::transit::Dialect;
use crate::core::{Caller, Metacrypt};
use crate::error::CryptError;
use crate::methods::ENGINE;

/// Who may call a facade route.
#[derive(Clone, Copy)]
enum Access {
    Public,
    Admin,
    Engine,
    Authenticated,
}

impl Access {
    fn requirement(self) -> Requirement {
        match self {
            Self::Public => Requirement::Public,
            Self::Admin => Requirement::Admin,
            Self::Engine => ENGINE,
            Self::Authenticated => Requirement::Authenticated,
        }
    }
}

const W: &[&str] = &["POST", "PUT"];

/// Every facade route: methods, axum path, access. The router and the
/// method map are both built from this table. `LIST` arrives as
/// `GET ?list=true` (the host rewrites it before routing).
const TABLE: &[(&[&str], &str, Access)] = &[
    (&["GET", "HEAD"], "/v1/sys/health", Access::Public),
    (&["GET"], "/v1/sys/seal-status", Access::Public),
    (W, "/v1/sys/unseal", Access::Admin),
    (W, "/v1/sys/seal", Access::Admin),
    (&["GET"], "/v1/sys/mounts", Access::Admin),
    (
        &["POST", "PUT", "DELETE"],
        "/v1/sys/mounts/{*path}",
        Access::Admin,
    ),
    (
        &["GET"],
        "/v1/auth/token/lookup-self",
        Access::Authenticated,
    ),
    // transit
    (&["GET"], "/v1/{mount}/keys", Access::Engine),
    (
        &["POST", "PUT", "GET", "DELETE"],
        "/v1/{mount}/keys/{name}",
        Access::Engine,
    ),
    (W, "/v1/{mount}/keys/{name}/{action}", Access::Engine),
    (&["GET"], "/v1/{mount}/export/{kind}/{name}", Access::Engine),
    (
        &["GET"],
        "/v1/{mount}/export/{kind}/{name}/{version}",
        Access::Engine,
    ),
    (W, "/v1/{mount}/encrypt/{name}", Access::Engine),
    (W, "/v1/{mount}/decrypt/{name}", Access::Engine),
    (W, "/v1/{mount}/rewrap/{name}", Access::Engine),
    (W, "/v1/{mount}/datakey/{kind}/{name}", Access::Engine),
    (W, "/v1/{mount}/sign/{name}", Access::Engine),
    (W, "/v1/{mount}/sign/{name}/{hash}", Access::Engine),
    (W, "/v1/{mount}/verify/{name}", Access::Engine),
    (W, "/v1/{mount}/verify/{name}/{hash}", Access::Engine),
    (W, "/v1/{mount}/hmac/{name}", Access::Engine),
    (W, "/v1/{mount}/hmac/{name}/{algo}", Access::Engine),
    (W, "/v1/{mount}/random", Access::Engine),
    (W, "/v1/{mount}/random/{bytes}", Access::Engine),
    (W, "/v1/{mount}/hash", Access::Engine),
    (W, "/v1/{mount}/hash/{algo}", Access::Engine),
    // kv v2
    (
        &["GET", "POST", "PUT", "PATCH", "DELETE"],
        "/v1/{mount}/data/{*path}",
        Access::Engine,
    ),
    (W, "/v1/{mount}/delete/{*path}", Access::Engine),
    (W, "/v1/{mount}/undelete/{*path}", Access::Engine),
    (W, "/v1/{mount}/destroy/{*path}", Access::Engine),
    (
        &["GET", "POST", "PUT", "DELETE"],
        "/v1/{mount}/metadata/{*path}",
        Access::Engine,
    ),
    (&["GET"], "/v1/{mount}/metadata", Access::Engine),
    (&["GET"], "/v1/{mount}/metadata/", Access::Engine),
    (
        &["GET", "POST", "PUT"],
        "/v1/{mount}/config",
        Access::Engine,
    ),
    // pki (`sign/{name}` above is pki's on a pki mount)
    (W, "/v1/{mount}/issue/{name}", Access::Engine),
    (W, "/v1/{mount}/sign-verbatim", Access::Engine),
    (W, "/v1/{mount}/sign-verbatim/{name}", Access::Engine),
    (W, "/v1/{mount}/revoke", Access::Engine),
    (&["GET"], "/v1/{mount}/ca", Access::Public),
    (&["GET"], "/v1/{mount}/ca/pem", Access::Public),
    (&["GET"], "/v1/{mount}/ca_chain", Access::Public),
    (&["GET"], "/v1/{mount}/crl", Access::Public),
    (&["GET"], "/v1/{mount}/crl/pem", Access::Public),
    (&["GET"], "/v1/{mount}/cert/{name}", Access::Engine),
    (&["GET"], "/v1/{mount}/certs", Access::Engine),
    (&["GET"], "/v1/{mount}/roles", Access::Engine),
    (
        &["GET", "POST", "PUT", "DELETE"],
        "/v1/{mount}/roles/{name}",
        Access::Engine,
    ),
    (W, "/v1/{mount}/root/generate/{kind}", Access::Engine),
    (W, "/v1/{mount}/tidy", Access::Engine),
];

/// Routes answered while sealed (everything else is "Vault is sealed"):
/// the barrier's own and the pki reads of clear public rows.
const OPEN_WHILE_SEALED: &[&str] = &[
    "/v1/sys/health",
    "/v1/sys/seal-status",
    "/v1/sys/unseal",
    "/v1/{mount}/ca",
    "/v1/{mount}/ca/pem",
    "/v1/{mount}/ca_chain",
    "/v1/{mount}/crl",
    "/v1/{mount}/crl/pem",
];

/// The facade's entries for the method map, all in the Vault dialect.
pub fn methods(mut map: mc_service::auth::MethodMap) -> mc_service::auth::MethodMap {
    for (methods, path, access) in TABLE {
        for method in *methods {
            map = map.vault(method, path, access.requirement());
        }
    }
    map
}

/// How many (method, path) entries [`methods`] adds.
pub fn route_count() -> usize {
    TABLE.iter().map(|(m, _, _)| m.len()).sum()
}

fn filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "HEAD" => MethodFilter::HEAD,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        _ => MethodFilter::DELETE,
    }
}

/// The engines' guard in Vault's shape (a `route_layer`).
async fn vault_unsealed(
    State(m): State<Arc<Metacrypt>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match m.require_unsealed() {
        Ok(()) => next.run(request).await,
        Err(_) => {
            mc_service::body::drain_refused(request).await;
            sealed()
        }
    }
}

async fn facade(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    method: Method,
    uri: Uri,
    b: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/v1/").unwrap_or("");
    let head = method == Method::HEAD;
    let method = if head { "GET" } else { method.as_str() };
    let pki_mount = pki_sign_path(&m, path);
    let result = match decode(method, path, uri.query(), &b, pki_mount) {
        Ok(r) => run(&m, &c, r).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(reply) => reply.into_response(),
        Err(e) => error(&e),
    }
}

/// Whether `path` is `<mount>/sign/…` on a pki mount: `sign/<name>` is
/// transit's on every other mount.
fn pki_sign_path(m: &Metacrypt, path: &str) -> bool {
    let mut segments = path.split('/');
    match (segments.next(), segments.next()) {
        (Some(mount), Some("sign")) => m.get_mount(mount).is_ok_and(|x| x.kind == "pki"),
        _ => false,
    }
}

/// The whole facade router.
pub fn router(m: Arc<Metacrypt>) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for (methods, path, _) in TABLE {
        let mut route = on(filter(methods[0]), facade);
        for method in &methods[1..] {
            route = route.on(filter(method), facade);
        }
        if OPEN_WHILE_SEALED.contains(path) {
            open = open.route(path, route);
        } else {
            guarded = guarded.route(path, route);
        }
    }
    let guard = axum::middleware::from_fn_with_state(m.clone(), vault_unsealed);
    open.layer(DefaultBodyLimit::max(SYS_BODY_LIMIT))
        .merge(
            guarded
                .route_layer(guard)
                .layer(DefaultBodyLimit::max(ENGINE_BODY_LIMIT)),
        )
        .with_state(m)
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, CryptError> {
    serde_json::to_value(v).map_err(|e| CryptError::internal(e.to_string()))
}

/// The one core call for a decoded request.
async fn run(m: &Metacrypt, c: &Caller, r: Request) -> Result<Reply, CryptError> {
    use reply::Reply::{Data, Empty};
    Ok(match r {
        Request::Health(codes) => reply::health(&m.status()?, codes),
        Request::SealStatus => Reply::Raw(200, reply::seal_status(&m.status()?)),
        Request::Unseal(input) => Reply::Raw(200, reply::seal_status(&m.unseal(c, input).await?)),
        Request::Seal => {
            m.seal(c).await?;
            Empty
        }
        Request::MountList => Data(reply::mounts(&m.list_mounts()?)),
        Request::MountCreate(input) => {
            m.create_mount(c, input)?;
            Empty
        }
        Request::MountDelete(name) => {
            m.delete_mount(c, &name)?;
            Empty
        }
        Request::LookupSelf => Data(reply::lookup_self(c.require()?)),
        Request::Transit(mount, t) => transit(m, c, &mount, *t)?,
        Request::Kv(mount, k) => kv(m, c, &mount, *k)?,
        Request::Pki(mount, p) => pki::run(m, c, &mount, *p)?,
    })
}

fn transit(m: &Metacrypt, c: &Caller, mount: &str, t: Transit) -> Result<Reply, CryptError> {
    use reply::Reply::{Data, Empty};
    Ok(match t {
        Transit::ListKeys => Data(json!({"keys": m.transit_list_keys(c, mount)?})),
        Transit::CreateKey(name, req) => {
            m.transit_create_key(c, mount, &name, &req)?;
            Data(m.transit_read_key(c, mount, &name, Dialect::Vault)?)
        }
        Transit::ReadKey(name) => Data(m.transit_read_key(c, mount, &name, Dialect::Vault)?),
        Transit::DeleteKey(name) => {
            m.transit_delete_key(c, mount, &name)?;
            Empty
        }
        Transit::ConfigKey(name, req) => {
            m.transit_config_key(c, mount, &name, &req)?;
            Data(m.transit_read_key(c, mount, &name, Dialect::Vault)?)
        }
        Transit::RotateKey(name) => {
            m.transit_rotate_key(c, mount, &name)?;
            Data(m.transit_read_key(c, mount, &name, Dialect::Vault)?)
        }
        Transit::TrimKey(name, min) => {
            m.transit_trim_key(c, mount, &name, min)?;
            Data(m.transit_read_key(c, mount, &name, Dialect::Vault)?)
        }
        Transit::Export(kind, name, version) => Data(m.transit_export_key(
            c,
            mount,
            &kind,
            &name,
            version.as_deref(),
            Dialect::Vault,
        )?),
        Transit::Encrypt(name, req) => reply::answer(m.transit_encrypt(c, mount, &name, &req)?)?,
        Transit::Decrypt(name, req) => reply::answer(m.transit_decrypt(c, mount, &name, &req)?)?,
        Transit::Rewrap(name, req) => reply::answer(m.transit_rewrap(c, mount, &name, &req)?)?,
        Transit::Datakey(kind, name, req) => {
            reply::answer(m.transit_datakey(c, mount, &kind, &name, &req)?)?
        }
        Transit::Sign(name, req) => reply::answer(m.transit_sign(c, mount, &name, &req)?)?,
        Transit::Verify(name, req) => reply::answer(m.transit_verify(c, mount, &name, &req)?)?,
        Transit::Hmac(name, req) => reply::answer(m.transit_hmac(c, mount, &name, &req)?)?,
        Transit::Random(req) => Data(to_value(m.transit_random(c, mount, &req)?)?),
        Transit::Hash(req) => Data(to_value(m.transit_hash(c, mount, &req)?)?),
    })
}

fn kv(m: &Metacrypt, c: &Caller, mount: &str, k: Kv) -> Result<Reply, CryptError> {
    let mut r = kv_call(m, c, mount, k)?;
    if let Reply::Data(v) | Reply::DataWith(_, v) = &mut r {
        reply::kv_times(v);
    }
    Ok(r)
}

/// Go's `time.Duration` text for whole seconds (`0s`, `45s`, `1m30s`,
/// `1h0m0s`), as Vault answers durations.
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// `delete_version_after` (seconds) in Go's duration text.
fn go_duration_field(o: &mut Map<String, Value>) {
    let secs = o
        .get("delete_version_after")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    o.insert("delete_version_after".into(), go_duration(secs).into());
}

fn kv_call(m: &Metacrypt, c: &Caller, mount: &str, k: Kv) -> Result<Reply, CryptError> {
    use reply::Reply::{Data, Empty};
    Ok(match k {
        Kv::Read(path, version) => {
            let r = m.kv_read(c, mount, &path, version)?;
            let deleted = r.data.is_none();
            let data = to_value(r)?;
            match deleted {
                // Deleted or destroyed: 404 carrying the metadata, which
                // hvac's `raise_on_deleted_version=False` reads.
                true => Reply::DataWith(404, data),
                false => Data(data),
            }
        }
        Kv::Write(path, w) => Data(to_value(m.kv_write(c, mount, &path, &w)?)?),
        Kv::Patch(path, w) => Data(to_value(m.kv_patch(c, mount, &path, &w)?)?),
        Kv::DeleteLatest(path) => {
            m.kv_delete_latest(c, mount, &path)?;
            Empty
        }
        Kv::Delete(path, d) => {
            m.kv_delete_versions(c, mount, &path, &d)?;
            Empty
        }
        Kv::Undelete(path, d) => {
            m.kv_undelete(c, mount, &path, &d)?;
            Empty
        }
        Kv::Destroy(path, d) => {
            m.kv_destroy(c, mount, &path, &d)?;
            Empty
        }
        Kv::ReadMetadata(path) => {
            let mut v = to_value(m.kv_read_metadata(c, mount, &path)?)?;
            if let Value::Object(o) = &mut v {
                go_duration_field(o);
                // Vault's versions carry no `expires` flag.
                if let Some(Value::Object(vs)) = o.get_mut("versions") {
                    for v in vs.values_mut() {
                        if let Value::Object(v) = v {
                            v.remove("expires");
                        }
                    }
                }
                // Vault: no custom metadata is null, and oldest_version
                // stays 0 until a version was pruned.
                if o.get("custom_metadata")
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    o.insert("custom_metadata".into(), Value::Null);
                }
                if o.get("oldest_version").and_then(Value::as_u64) == Some(1) {
                    o.insert("oldest_version".into(), 0.into());
                }
            }
            Data(v)
        }
        Kv::List(path) => {
            let l = m.kv_list(c, mount, &path)?;
            if l.keys.is_empty() {
                return Err(CryptError::NotFound(String::new()));
            }
            Data(to_value(l)?)
        }
        Kv::WriteMetadata(path, i) => {
            m.kv_write_metadata(c, mount, &path, &i)?;
            Empty
        }
        Kv::DeleteMetadata(path) => {
            m.kv_delete_metadata(c, mount, &path)?;
            Empty
        }
        Kv::ReadConfig => {
            let mut v = to_value(m.kv_read_config(c, mount)?)?;
            if let Value::Object(o) = &mut v {
                go_duration_field(o);
            }
            Data(v)
        }
        Kv::WriteConfig(i) => {
            m.kv_write_config(c, mount, &i)?;
            Empty
        }
    })
}

#[cfg(test)]
mod tests;
