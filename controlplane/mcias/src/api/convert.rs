//! Conversions between the core's types and `mc.iam.v1` messages, both
//! directions, in one place: proto enums ↔ model enums, rules, accounts,
//! sessions, passkeys and SSO clients. An unknown enum value is an
//! `INVALID_ARGUMENT` naming the field.

use mc_proto::iam::v1 as pb;
use tonic::Status;

use crate::core::mfa::passkey::PasskeyInfo;
use crate::core::sso::{ClientInput, SsoClient};
use crate::core::{Mcias, Session};
use crate::model::{Account, AccountStatus, AccountType, Role};
use crate::policy::{Effect, Rule};

pub(crate) fn role_pb(r: Role) -> i32 {
    (match r {
        Role::Admin => pb::Role::Admin,
        Role::User => pb::Role::User,
        Role::Guest => pb::Role::Guest,
    }) as i32
}

pub(crate) fn role_name(r: i32) -> Result<String, Status> {
    match pb::Role::try_from(r) {
        Ok(pb::Role::Admin) => Ok("admin".into()),
        Ok(pb::Role::User) => Ok("user".into()),
        Ok(pb::Role::Guest) => Ok("guest".into()),
        _ => Err(Status::invalid_argument("roles: unknown role")),
    }
}

pub(crate) fn role_from(r: i32) -> Result<Role, Status> {
    role_name(r).and_then(|n| Role::parse(&n).map_err(Status::from))
}

pub(crate) fn type_pb(t: AccountType) -> i32 {
    (match t {
        AccountType::Human => pb::AccountType::Human,
        AccountType::System => pb::AccountType::System,
    }) as i32
}

pub(crate) fn type_from(t: i32) -> Result<AccountType, Status> {
    match pb::AccountType::try_from(t) {
        Ok(pb::AccountType::Unspecified | pb::AccountType::Human) => Ok(AccountType::Human),
        Ok(pb::AccountType::System) => Ok(AccountType::System),
        Err(_) => Err(Status::invalid_argument("type: unknown account type")),
    }
}

pub(crate) fn account_pb(a: &Account) -> pb::Account {
    pb::Account {
        id: a.id.clone(),
        username: a.username.clone(),
        r#type: type_pb(a.account_type),
        status: (match a.status {
            AccountStatus::Active => pb::AccountStatus::Active,
            AccountStatus::Disabled => pb::AccountStatus::Disabled,
            AccountStatus::Deleted => pb::AccountStatus::Deleted,
        }) as i32,
        roles: a.roles.iter().copied().map(role_pb).collect(),
        tags: a.tags.clone(),
        totp_enabled: a.totp_enabled,
        passkeys: 0,
        created_at_unix: a.created_at,
        last_login_unix: a.last_login,
        locked_until_unix: a.locked_until,
    }
}

pub(crate) fn effect_pb(e: Effect) -> i32 {
    (match e {
        Effect::Allow => pb::Effect::Allow,
        Effect::Deny => pb::Effect::Deny,
    }) as i32
}

pub(crate) fn rule_pb(r: &Rule) -> pb::PolicyRule {
    pb::PolicyRule {
        id: r.id.clone(),
        priority: r.priority,
        effect: effect_pb(r.effect),
        description: r.description.clone(),
        roles: r.roles.iter().copied().map(role_pb).collect(),
        account_types: r.account_types.iter().copied().map(type_pb).collect(),
        account_ids: r.account_ids.clone(),
        service_names: r.service_names.clone(),
        required_tags: r.required_tags.clone(),
        actions: r.actions.clone(),
        not_before_unix: r.not_before,
        expires_at_unix: r.expires_at,
        enabled: r.enabled,
    }
}

pub(crate) fn rule_from(r: pb::PolicyRule) -> Result<Rule, Status> {
    let effect = match pb::Effect::try_from(r.effect) {
        Ok(pb::Effect::Allow) => Effect::Allow,
        Ok(pb::Effect::Deny) => Effect::Deny,
        _ => return Err(Status::invalid_argument("effect: allow or deny")),
    };
    Ok(Rule {
        id: r.id,
        priority: r.priority,
        effect,
        description: r.description,
        roles: r
            .roles
            .into_iter()
            .map(role_from)
            .collect::<Result<_, _>>()?,
        account_types: r
            .account_types
            .into_iter()
            .map(type_from)
            .collect::<Result<_, _>>()?,
        account_ids: r.account_ids,
        service_names: r.service_names,
        required_tags: r.required_tags,
        actions: r.actions,
        not_before: r.not_before_unix,
        expires_at: r.expires_at_unix,
        enabled: r.enabled,
    })
}

pub(crate) fn session_pb(iam: &Mcias, s: Session) -> Result<pb::Session, Status> {
    let p = iam
        .verify(&s.token)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(pb::Session {
        token: s.token,
        expires_at_unix: s.expires_at,
        account_id: p.account_id,
        roles: p
            .roles
            .iter()
            .filter_map(|r| Role::parse(r).ok())
            .map(role_pb)
            .collect(),
    })
}
pub(crate) fn passkey_pb(k: PasskeyInfo) -> pb::Passkey {
    pb::Passkey {
        id: k.id,
        name: k.name,
        aaguid: String::new(),
        created_at_unix: k.created_at,
        last_used_unix: k.last_used,
    }
}

pub(crate) fn sso_pb(c: SsoClient) -> pb::SsoClient {
    pb::SsoClient {
        client_id: c.client_id,
        name: c.name,
        redirect_uris: c.redirect_uris,
        tags: c.tags,
        enabled: c.enabled,
        id_token_signed_response_alg: c.id_token_signed_response_alg,
    }
}

pub(crate) fn sso_input(c: Option<pb::SsoClient>) -> Result<ClientInput, Status> {
    let c = c.ok_or_else(|| Status::invalid_argument("client: required"))?;
    Ok(ClientInput {
        client_id: c.client_id,
        name: c.name,
        redirect_uris: c.redirect_uris,
        tags: c.tags,
        enabled: Some(c.enabled),
        id_token_signed_response_alg: c.id_token_signed_response_alg,
    })
}
