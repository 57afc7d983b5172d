//! HTTP adapters of SSO ([`crate::core::sso`]): OIDC discovery, the OAuth 2.0
//! authorize, token and userinfo endpoints, and the admin REST for clients
//! (`/v1/sso/clients`, twin of gRPC `SsoClients`).

use std::sync::Arc;

use axum::extract::{Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

use crate::core::sso::{Authorize, AuthorizeRequest, ClientInput, TokenError, TokenRequest};
use crate::core::{Caller, Mcias};
use crate::error::IamError;
use mc_service::body::JsonBody;

type Result<T> = std::result::Result<T, IamError>;

/// Form bodies of the token endpoint: at most this many bytes.
const MAX_FORM: usize = 16 * 1024;

async fn discovery(State(iam): State<Arc<Mcias>>) -> Json<Value> {
    Json(iam.oidc_discovery())
}

async fn authorize(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    headers: HeaderMap,
    raw: axum::extract::RawQuery,
) -> Response {
    let q = raw.0.unwrap_or_default();
    if q.len() > 4096 {
        return crate::ui::error_page(StatusCode::BAD_REQUEST, "request too long");
    }
    let req: AuthorizeRequest = match serde_urlencoded::from_str(&q) {
        Ok(r) => r,
        Err(e) => return crate::ui::error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // Public routes: only the address counts (a session is read from the cookie).
    let c = Caller {
        principal: None,
        ..caller
    };
    match iam.authorize(&c, &req, crate::ui::session_cookie(&headers)) {
        Ok(Authorize::Refuse(why)) => crate::ui::error_page(StatusCode::BAD_REQUEST, &why),
        Ok(Authorize::Login) => {
            let here = format!("/oauth2/authorize?{q}");
            // A navigation from another site carries no SameSite=Strict
            // cookie: reload once from this origin, which does.
            let cross_site = headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes() == b"cross-site");
            if cross_site {
                crate::ui::reload_page(&here)
            } else {
                crate::ui::login_page(&here, None)
            }
        }
        Ok(Authorize::Redirect(to)) => Redirect::to(&to).into_response(),
        Err(e) => crate::ui::error_page(e.status(), &e.to_string()),
    }
}

fn token_error(e: TokenError) -> Response {
    let (status, error, description) = match e {
        TokenError::InvalidClient => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed".to_owned(),
        ),
        TokenError::Bad(code, why) => (StatusCode::BAD_REQUEST, code, why),
        TokenError::Internal(e) => return e.into_response(),
    };
    let mut r = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = header::HeaderValue::from_str("Basic realm=\"mcias\"")
    {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// `client_secret_basic`: `Authorization: Basic base64(urlenc(id):urlenc(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| percent_decode(s);
    Some((dec(id)?, dec(secret)?))
}

fn percent_decode(s: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()?
        .pop()
        .map(|(_, v)| v)
}

async fn token(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    headers: HeaderMap,
    form: RawForm,
) -> Response {
    if form.0.len() > MAX_FORM {
        return token_error(TokenError::Bad(
            "invalid_request",
            "body too large".to_owned(),
        ));
    }
    let mut req: TokenRequest = match serde_urlencoded::from_bytes(&form.0) {
        Ok(r) => r,
        Err(e) => return token_error(TokenError::Bad("invalid_request", e.to_string())),
    };
    if let Some((id, secret)) = basic_credentials(&headers) {
        if !req.client_id.is_empty() && req.client_id != id {
            return token_error(TokenError::InvalidClient);
        }
        req.client_id = id;
        req.client_secret = secret;
    }
    let c = Caller {
        principal: None,
        ..caller
    };
    match tokio::task::spawn_blocking(move || iam.token(&c, &req)).await {
        Ok(Ok(t)) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::to_value(t).unwrap_or_default()),
        )
            .into_response(),
        Ok(Err(e)) => token_error(e),
        Err(e) => IamError::internal(e).into_response(),
    }
}

async fn userinfo(State(iam): State<Arc<Mcias>>, headers: HeaderMap) -> Response {
    let Some(t) = mc_service::auth::bearer(&headers) else {
        let mut r = IamError::Unauthenticated("missing bearer token".to_owned()).into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    };
    match iam.userinfo(t) {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            let mut r = e.into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            r
        }
    }
}

async fn list_clients(State(iam): State<Arc<Mcias>>) -> Result<Json<Value>> {
    Ok(Json(json!({"clients": iam.sso_clients()?})))
}

async fn get_client(State(iam): State<Arc<Mcias>>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(json!(iam.sso_client(&id)?)))
}

async fn create_client(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<ClientInput>,
) -> Result<Response> {
    let (client, secret) = iam.create_sso_client(&caller, b)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"client": client, "client_secret": secret})),
    )
        .into_response())
}

async fn update_client(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(mut input): JsonBody<ClientInput>,
) -> Result<Json<Value>> {
    input.client_id = id;
    Ok(Json(json!(iam.update_sso_client(&caller, input)?)))
}

async fn delete_client(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    iam.delete_sso_client(&caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router(iam: Arc<Mcias>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/authorize", get(authorize))
        .route("/oauth2/token", axum::routing::post(token))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/v1/sso/clients", get(list_clients).post(create_client))
        .route(
            "/v1/sso/clients/{id}",
            get(get_client).put(update_client).delete(delete_client),
        )
        .with_state(iam)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("my%20app:s%3Acret");
        h.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_str(&format!("Basic {v}")).expect("header"),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("my app".to_owned(), "s:cret".to_owned()))
        );
    }
}
