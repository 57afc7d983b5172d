//! REST (JSON) adapter: `/v1/auth/*` and `/v1/iam/*`. Each handler calls
//! the [`Mcias`] operation its gRPC twin calls; errors are `{"error": …}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use mc_service::auth::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

use mc_service::body::JsonBody;

use crate::core::{Caller, LoginInput, Mcias, NewAccount, TokenRecord};
use crate::error::IamError;
use crate::model::Account;
use crate::policy::Rule;

type Result<T> = std::result::Result<T, IamError>;

pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id, "username": a.username, "type": a.account_type.as_str(), "status": a.status.as_str(),
        "roles": a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "tags": a.tags,
        "created_at": a.created_at, "last_login": a.last_login, "locked_until": a.locked_until,
        "totp_enabled": a.totp_enabled,
    })
}

fn token_json(t: &TokenRecord) -> Value {
    json!({"jti": t.jti, "account_id": t.account_id, "kind": t.kind, "description": t.description,
           "issued_at": t.issued_at, "expires_at": t.expires_at, "revoked": t.revoked, "scopes": t.scopes})
}

fn principal_json(p: &Principal) -> Value {
    json!({"valid": true, "account_id": p.account_id, "username": p.username, "type": p.account_type,
           "roles": p.roles, "tags": p.tags, "jti": p.jti, "expires_at": p.expires_at, "scopes": p.scopes})
}

async fn login(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(input): JsonBody<LoginInput>,
) -> Result<Json<Value>> {
    let session = iam.login(&c, input).await?;
    Ok(Json(
        json!({"token": session.token, "expires_at": session.expires_at}),
    ))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn validate(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(t): JsonBody<TokenBody>,
) -> Result<Json<Value>> {
    Ok(Json(match iam.validate(&caller, &t.token)? {
        Some(p) => principal_json(&p),
        None => json!({"valid": false}),
    }))
}

async fn jwks(State(iam): State<Arc<Mcias>>) -> Json<Value> {
    Json(iam.jwks())
}

async fn logout(State(iam): State<Arc<Mcias>>, caller: Caller) -> Result<StatusCode> {
    iam.logout(&caller)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn renew(State(iam): State<Arc<Mcias>>, caller: Caller) -> Result<Json<Value>> {
    let session = iam.renew(&caller)?;
    Ok(Json(
        json!({"token": session.token, "expires_at": session.expires_at}),
    ))
}

#[derive(Deserialize)]
struct PasswordBody {
    old_password: String,
    new_password: String,
}

async fn password(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(b): JsonBody<PasswordBody>,
) -> Result<StatusCode> {
    iam.change_password(&c, &b.old_password, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SecretBody {
    password: String,
}

async fn totp_enroll(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(b): JsonBody<SecretBody>,
) -> Result<Json<Value>> {
    let (secret, url) = iam.totp_enroll(&c, &b.password).await?;
    Ok(Json(json!({"secret": secret, "otpauth_url": url})))
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

async fn totp_confirm(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<CodeBody>,
) -> Result<StatusCode> {
    iam.totp_confirm(&caller, &b.code)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_disable(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(b): JsonBody<SecretBody>,
) -> Result<StatusCode> {
    iam.totp_disable(&c, &b.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ResetCreateBody {
    #[serde(default)]
    ttl_seconds: u64,
}

async fn create_reset(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ResetCreateBody>,
) -> Result<Response> {
    let (token, expires_at) = iam.create_reset_token(&caller, &id, b.ttl_seconds)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "expires_at": expires_at})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct RedeemBody {
    token: String,
    new_password: String,
}

async fn redeem_reset(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(b): JsonBody<RedeemBody>,
) -> Result<StatusCode> {
    iam.rate_limit_public(&c)?;
    iam.redeem_reset_token(&c, &b.token, &b.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn whoami(caller: Caller) -> Result<Json<Value>> {
    Ok(Json(principal_json(caller.require()?)))
}

async fn list_accounts(State(iam): State<Arc<Mcias>>) -> Result<Json<Value>> {
    Ok(Json(
        json!({"accounts": iam.list_accounts()?.iter().map(account_json).collect::<Vec<_>>()}),
    ))
}

async fn create_account(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(input): JsonBody<NewAccount>,
) -> Result<Response> {
    let a = iam.create_account(&c, input).await?;
    Ok((StatusCode::CREATED, Json(account_json(&a))).into_response())
}

async fn get_account(State(iam): State<Arc<Mcias>>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(account_json(&iam.find(&id)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: String,
}

async fn update_account(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UpdateBody>,
) -> Result<Json<Value>> {
    let id = iam.find(&id)?.id;
    Ok(Json(account_json(
        &iam.set_status(&caller, &id, &b.status)?,
    )))
}

async fn delete_account(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = iam.find(&id)?.id;
    iam.delete_account(&caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RolesBody {
    roles: Vec<String>,
}

async fn set_roles(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<RolesBody>,
) -> Result<Json<Value>> {
    let id = iam.find(&id)?.id;
    Ok(Json(account_json(&iam.set_roles(&caller, &id, &b.roles)?)))
}

#[derive(Deserialize)]
struct TagsBody {
    tags: Vec<String>,
}

async fn set_tags(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TagsBody>,
) -> Result<Json<Value>> {
    let id = iam.find(&id)?.id;
    Ok(Json(account_json(&iam.set_tags(&caller, &id, &b.tags)?)))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    account_id: String,
}

async fn list_tokens(
    State(iam): State<Arc<Mcias>>,
    Query(q): Query<TokenQuery>,
) -> Result<Json<Value>> {
    let tokens = iam.list_tokens(Some(&q.account_id))?;
    Ok(Json(
        json!({"tokens": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
struct IssueBody {
    account_id: String,
    #[serde(default)]
    ttl_seconds: u64,
    #[serde(default)]
    description: String,
    /// Optional: what the token is limited to (only narrows the account's rights).
    #[serde(default)]
    scopes: Vec<String>,
}

async fn issue_token(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<IssueBody>,
) -> Result<Response> {
    let session = iam.issue_system_token(
        &caller,
        &b.account_id,
        b.ttl_seconds,
        &b.description,
        &b.scopes,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": session.token, "expires_at": session.expires_at, "jti": session.jti})),
    )
        .into_response())
}

async fn revoke_token(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(jti): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(json!({"revoked": iam.revoke_token(&caller, &jti)?})))
}

#[derive(Deserialize)]
struct CheckBody {
    jtis: Vec<String>,
}

async fn check_tokens(
    State(iam): State<Arc<Mcias>>,
    JsonBody(b): JsonBody<CheckBody>,
) -> Result<Json<Value>> {
    Ok(Json(json!({"revoked": iam.check_revocation(&b.jtis)?})))
}

async fn rotate_keys(State(iam): State<Arc<Mcias>>, caller: Caller) -> Result<Json<Value>> {
    Ok(Json(json!({"kid": iam.rotate_keys(&caller)?})))
}

async fn list_rules(State(iam): State<Arc<Mcias>>) -> Result<Json<Value>> {
    Ok(Json(json!({"rules": iam.rules()?})))
}

async fn create_rule(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<Rule>,
) -> Result<Response> {
    let r = iam.create_rule(&caller, b, false)?;
    Ok((StatusCode::CREATED, Json(json!(r))).into_response())
}

async fn get_rule(State(iam): State<Arc<Mcias>>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(json!(iam.rule(&id)?)))
}

async fn update_rule(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(mut r): JsonBody<Rule>,
) -> Result<Json<Value>> {
    r.id = id;
    Ok(Json(json!(iam.update_rule(&caller, r)?)))
}

async fn delete_rule(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    iam.delete_rule(&caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ExplainBody {
    account: String,
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    at: i64,
    #[serde(default)]
    candidate: Option<Rule>,
}

async fn explain(
    State(iam): State<Arc<Mcias>>,
    JsonBody(b): JsonBody<ExplainBody>,
) -> Result<Json<Value>> {
    let d = iam.explain(
        &b.account,
        &b.service_name,
        &b.tags,
        &b.action,
        b.at,
        b.candidate,
    )?;
    Ok(Json(json!(d)))
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default = "hundred")]
    limit: usize,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
}

fn hundred() -> usize {
    100
}

async fn audit(State(iam): State<Arc<Mcias>>, Query(q): Query<AuditQuery>) -> Result<Json<Value>> {
    Ok(Json(
        json!({"events": iam.audit_log(q.limit, &q.action, &q.actor)?}),
    ))
}

#[derive(Deserialize)]
struct PasskeyFinishBody {
    challenge_id: String,
    /// The authenticator's response: a JSON object (or the same as a string).
    credential: Value,
    #[serde(default)]
    name: String,
}

fn credential_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

async fn passkey_register_begin(
    State(iam): State<Arc<Mcias>>,
    c: Caller,
    JsonBody(b): JsonBody<SecretBody>,
) -> Result<Json<Value>> {
    let (id, options) = iam.begin_passkey_registration(&c, &b.password).await?;
    Ok(Json(json!({"challenge_id": id, "options": options})))
}

async fn passkey_register_finish(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<PasskeyFinishBody>,
) -> Result<Response> {
    let k = iam.finish_passkey_registration(
        &caller,
        &b.challenge_id,
        &credential_text(b.credential),
        &b.name,
    )?;
    Ok((StatusCode::CREATED, Json(json!(k))).into_response())
}

#[derive(Deserialize)]
struct PasskeyLoginBody {
    username: String,
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Vec<String>,
}

async fn passkey_login_begin(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<PasskeyLoginBody>,
) -> Result<Json<Value>> {
    let (id, options) = iam.begin_passkey_login(&caller, &b.username, &b.service_name, &b.tags)?;
    Ok(Json(json!({"challenge_id": id, "options": options})))
}

async fn passkey_login_finish(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    JsonBody(b): JsonBody<PasskeyFinishBody>,
) -> Result<Json<Value>> {
    let session =
        iam.finish_passkey_login(&caller, &b.challenge_id, &credential_text(b.credential))?;
    Ok(Json(
        json!({"token": session.token, "expires_at": session.expires_at}),
    ))
}

#[derive(Deserialize)]
struct AccountQuery {
    #[serde(default)]
    account_id: String,
}

async fn list_passkeys(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Query(q): Query<AccountQuery>,
) -> Result<Json<Value>> {
    Ok(Json(
        json!({"passkeys": iam.list_passkeys(&caller, &q.account_id)?}),
    ))
}

async fn remove_passkey(
    State(iam): State<Arc<Mcias>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    // The body is optional: `{"password": ...}` for one's own passkey.
    #[derive(Default, Deserialize)]
    struct Body {
        #[serde(default)]
        password: String,
    }
    let b: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| IamError::invalid("body", e.to_string()))?
    };
    iam.remove_passkey(&caller, &q.account_id, &id, &b.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The REST routes (the auth layer is applied by the host over all surfaces).
pub fn router(iam: Arc<Mcias>) -> Router {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/validate", post(validate))
        .route("/v1/auth/jwks", get(jwks))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/renew", post(renew))
        .route("/v1/auth/password", post(password))
        .route("/v1/auth/reset", post(redeem_reset))
        .route("/v1/iam/accounts/{id}/reset-token", post(create_reset))
        .route("/v1/iam/whoami", get(whoami))
        .route("/v1/iam/totp/enroll", post(totp_enroll))
        .route("/v1/iam/totp/confirm", post(totp_confirm))
        .route("/v1/iam/totp/disable", post(totp_disable))
        .route("/v1/iam/accounts", get(list_accounts).post(create_account))
        .route(
            "/v1/iam/accounts/{id}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/v1/iam/accounts/{id}/roles", put(set_roles))
        .route("/v1/iam/accounts/{id}/tags", put(set_tags))
        .route("/v1/iam/tokens", get(list_tokens).post(issue_token))
        .route("/v1/iam/tokens/{jti}", axum::routing::delete(revoke_token))
        .route("/v1/iam/tokens/check", post(check_tokens))
        .route("/v1/iam/keys/rotate", post(rotate_keys))
        .route("/v1/iam/policy", get(list_rules).post(create_rule))
        .route(
            "/v1/iam/policy/{id}",
            get(get_rule).put(update_rule).delete(delete_rule),
        )
        .route("/v1/iam/policy/explain", post(explain))
        .route("/v1/iam/audit", get(audit))
        .route("/v1/auth/passkey/begin", post(passkey_login_begin))
        .route("/v1/auth/passkey/finish", post(passkey_login_finish))
        .route("/v1/iam/passkeys", get(list_passkeys))
        .route(
            "/v1/iam/passkeys/{id}",
            axum::routing::delete(remove_passkey),
        )
        .route(
            "/v1/iam/passkeys/register/begin",
            post(passkey_register_begin),
        )
        .route(
            "/v1/iam/passkeys/register/finish",
            post(passkey_register_finish),
        )
        .with_state(iam)
}
