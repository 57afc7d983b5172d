//! gRPC (`mc.iam.v1`) adapter: each RPC calls the [`Mcias`] operation its REST
//! twin calls. The auth layer in front of both puts the verified
//! [`Principal`] into the request extensions.

use std::sync::Arc;

use mc_proto::iam::v1 as pb;
use tonic::{Request, Response, Status};

use crate::api::convert::*;
use crate::core::{Caller, LoginInput, Mcias, NewAccount};
use crate::error::IamError;
use crate::model::{AccountType, Role};

type Reply<T> = Result<Response<T>, Status>;

/// Every `mc.iam.v1` service, sharing one [`Mcias`].
#[derive(Clone)]
pub struct Services(pub Arc<Mcias>);

impl Services {
    /// Adds every `mc.iam.v1` service to the process's gRPC router.
    pub fn add(iam: Arc<Mcias>, routes: &mut tonic::service::RoutesBuilder) {
        let s = Self(iam);
        routes
            .add_service(pb::auth_server::AuthServer::new(s.clone()))
            .add_service(pb::accounts_server::AccountsServer::new(s.clone()))
            .add_service(pb::tokens_server::TokensServer::new(s.clone()))
            .add_service(pb::policy_server::PolicyServer::new(s.clone()))
            .add_service(pb::audit_server::AuditServer::new(s.clone()))
            .add_service(pb::mfa_server::MfaServer::new(s.clone()))
            .add_service(pb::sso_clients_server::SsoClientsServer::new(s));
    }
}

#[tonic::async_trait]
impl pb::auth_server::Auth for Services {
    async fn login(&self, r: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = LoginInput {
            username: r.username,
            password: r.password,
            totp_code: (!r.totp_code.is_empty()).then_some(r.totp_code),
            totp_nonce: (!r.totp_nonce.is_empty()).then_some(r.totp_nonce),
            service_name: (!r.service_name.is_empty()).then_some(r.service_name),
            tags: r.tags,
        };
        let s = match self.0.login(&c, input).await {
            Ok(s) => s,
            Err(IamError::TotpRequired { nonce, expires_at }) => {
                return Ok(Response::new(pb::LoginResponse {
                    result: Some(pb::login_response::Result::TotpRequired(
                        pb::TotpChallenge {
                            nonce,
                            expires_at_unix: expires_at,
                        },
                    )),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(pb::LoginResponse {
            result: Some(pb::login_response::Result::Session(session_pb(&self.0, s)?)),
        }))
    }

    async fn logout(&self, r: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        self.0.logout(&Caller::from_grpc(&r))?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn renew(&self, r: Request<pb::RenewRequest>) -> Reply<pb::Session> {
        let s = self.0.renew(&Caller::from_grpc(&r))?;
        Ok(Response::new(session_pb(&self.0, s)?))
    }

    async fn validate(&self, r: Request<pb::ValidateRequest>) -> Reply<pb::ValidateResponse> {
        let c = Caller::from_grpc(&r);
        let out = match self.0.validate(&c, &r.into_inner().token)? {
            Some(p) => pb::ValidateResponse {
                valid: true,
                account_type: type_pb(
                    AccountType::parse(&p.account_type).unwrap_or(AccountType::Human),
                ),
                roles: p
                    .roles
                    .iter()
                    .filter_map(|r| Role::parse(r).ok())
                    .map(role_pb)
                    .collect(),
                account_id: p.account_id,
                username: p.username,
                tags: p.tags,
                jti: p.jti,
                expires_at_unix: p.expires_at,
                scopes: p.scopes,
            },
            None => pb::ValidateResponse::default(),
        };
        Ok(Response::new(out))
    }

    async fn change_password(
        &self,
        r: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0
            .change_password(&c, &r.current_password, &r.new_password)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn get_jwks(&self, _: Request<pb::GetJwksRequest>) -> Reply<pb::Jwks> {
        let doc = self.0.jwks();
        let keys = doc["keys"]
            .as_array()
            .map(|ks| {
                ks.iter()
                    .map(|k| pb::Jwk {
                        kid: k["kid"].as_str().unwrap_or_default().to_owned(),
                        kty: "OKP".to_owned(),
                        alg: "EdDSA".to_owned(),
                        r#use: "sig".to_owned(),
                        crv: "Ed25519".to_owned(),
                        x: k["x"].as_str().unwrap_or_default().to_owned(),
                        n: String::new(),
                        e: String::new(),
                        retired: k["exp"].as_i64().is_some_and(|e| e != i64::MAX),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(pb::Jwks { keys }))
    }
}

#[tonic::async_trait]
impl pb::accounts_server::Accounts for Services {
    async fn create_account(&self, r: Request<pb::CreateAccountRequest>) -> Reply<pb::Account> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = NewAccount {
            username: r.username,
            account_type: type_from(r.r#type)?.as_str().to_owned(),
            password: r.password,
            roles: r
                .roles
                .into_iter()
                .map(role_name)
                .collect::<Result<_, _>>()?,
            tags: r.tags,
        };
        let a = self.0.create_account(&c, input).await?;
        Ok(Response::new(account_pb(&a)))
    }

    async fn get_account(&self, r: Request<pb::GetAccountRequest>) -> Reply<pb::Account> {
        let r = r.into_inner();
        let key = if r.id.is_empty() { r.username } else { r.id };
        Ok(Response::new(account_pb(&self.0.find(&key)?)))
    }

    async fn list_accounts(
        &self,
        r: Request<pb::ListAccountsRequest>,
    ) -> Reply<pb::ListAccountsResponse> {
        let r = r.into_inner();
        let filter = match pb::AccountType::try_from(r.r#type) {
            Ok(pb::AccountType::Unspecified) => None,
            _ => Some(type_from(r.r#type)?),
        };
        let accounts = self
            .0
            .list_accounts()?
            .iter()
            .filter(|a| filter.is_none_or(|t| a.account_type == t))
            .map(account_pb)
            .collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }

    async fn update_account(&self, r: Request<pb::UpdateAccountRequest>) -> Reply<pb::Account> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let status = match pb::AccountStatus::try_from(r.status) {
            Ok(pb::AccountStatus::Active) => "active",
            Ok(pb::AccountStatus::Disabled) => "disabled",
            _ => return Err(Status::invalid_argument("status: active or disabled")),
        };
        let id = self.0.find(&r.id)?.id;
        Ok(Response::new(account_pb(
            &self.0.set_status(&c, &id, status)?,
        )))
    }

    async fn delete_account(
        &self,
        r: Request<pb::DeleteAccountRequest>,
    ) -> Reply<pb::DeleteAccountResponse> {
        let c = Caller::from_grpc(&r);
        let id = self.0.find(&r.into_inner().id)?.id;
        self.0.delete_account(&c, &id)?;
        Ok(Response::new(pb::DeleteAccountResponse {}))
    }

    async fn set_roles(&self, r: Request<pb::SetRolesRequest>) -> Reply<pb::Account> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let roles: Vec<String> = r
            .roles
            .into_iter()
            .map(role_name)
            .collect::<Result<_, _>>()?;
        let id = self.0.find(&r.id)?.id;
        Ok(Response::new(account_pb(
            &self.0.set_roles(&c, &id, &roles)?,
        )))
    }

    async fn set_tags(&self, r: Request<pb::SetTagsRequest>) -> Reply<pb::Account> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let id = self.0.find(&r.id)?.id;
        Ok(Response::new(account_pb(
            &self.0.set_tags(&c, &id, &r.tags)?,
        )))
    }

    async fn create_reset_token(
        &self,
        r: Request<pb::CreateResetTokenRequest>,
    ) -> Reply<pb::ResetToken> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let (token, expires_at_unix) =
            self.0
                .create_reset_token(&c, &r.id, u64::from(r.ttl_seconds))?;
        Ok(Response::new(pb::ResetToken {
            token,
            expires_at_unix,
        }))
    }

    async fn redeem_reset_token(
        &self,
        r: Request<pb::RedeemResetTokenRequest>,
    ) -> Reply<pb::RedeemResetTokenResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0.rate_limit_public(&c)?;
        self.0
            .redeem_reset_token(&c, &r.token, &r.new_password)
            .await?;
        Ok(Response::new(pb::RedeemResetTokenResponse {}))
    }
}

#[tonic::async_trait]
impl pb::tokens_server::Tokens for Services {
    async fn issue_system_token(
        &self,
        r: Request<pb::IssueSystemTokenRequest>,
    ) -> Reply<pb::Session> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let s = self.0.issue_system_token(
            &c,
            &r.account_id,
            u64::from(r.ttl_seconds),
            &r.description,
            &r.scopes,
        )?;
        Ok(Response::new(session_pb(&self.0, s)?))
    }

    async fn list_tokens(
        &self,
        r: Request<pb::ListTokensRequest>,
    ) -> Reply<pb::ListTokensResponse> {
        let tokens = self
            .0
            .list_tokens(Some(&r.into_inner().account_id))?
            .into_iter()
            .filter(|t| !t.revoked)
            .map(|t| pb::TokenInfo {
                jti: t.jti,
                account_id: t.account_id,
                issued_at_unix: t.issued_at,
                expires_at_unix: t.expires_at,
                description: t.description,
                service_name: String::new(),
                scopes: t.scopes,
            })
            .collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }

    async fn revoke_token(
        &self,
        r: Request<pb::RevokeTokenRequest>,
    ) -> Reply<pb::RevokeTokenResponse> {
        let c = Caller::from_grpc(&r);
        let revoked = self.0.revoke_token(&c, &r.into_inner().jti)?;
        Ok(Response::new(pb::RevokeTokenResponse { revoked }))
    }

    async fn rotate_signing_key(
        &self,
        r: Request<pb::RotateSigningKeyRequest>,
    ) -> Reply<pb::RotateSigningKeyResponse> {
        let kid = self.0.rotate_keys(&Caller::from_grpc(&r))?;
        Ok(Response::new(pb::RotateSigningKeyResponse { kid }))
    }

    async fn check_revocation(
        &self,
        r: Request<pb::CheckRevocationRequest>,
    ) -> Reply<pb::CheckRevocationResponse> {
        let revoked = self.0.check_revocation(&r.into_inner().jtis)?;
        Ok(Response::new(pb::CheckRevocationResponse { revoked }))
    }
}

#[tonic::async_trait]
impl pb::policy_server::Policy for Services {
    async fn list_rules(&self, _: Request<pb::ListRulesRequest>) -> Reply<pb::ListRulesResponse> {
        Ok(Response::new(pb::ListRulesResponse {
            rules: self.0.rules()?.iter().map(rule_pb).collect(),
        }))
    }

    async fn get_rule(&self, r: Request<pb::GetRuleRequest>) -> Reply<pb::PolicyRule> {
        Ok(Response::new(rule_pb(&self.0.rule(&r.into_inner().id)?)))
    }

    async fn create_rule(&self, r: Request<pb::CreateRuleRequest>) -> Reply<pb::PolicyRule> {
        let c = Caller::from_grpc(&r);
        let rule = rule_from(
            r.into_inner()
                .rule
                .ok_or_else(|| Status::invalid_argument("rule: required"))?,
        )?;
        Ok(Response::new(rule_pb(
            &self.0.create_rule(&c, rule, false)?,
        )))
    }

    async fn update_rule(&self, r: Request<pb::UpdateRuleRequest>) -> Reply<pb::PolicyRule> {
        let c = Caller::from_grpc(&r);
        let rule = rule_from(
            r.into_inner()
                .rule
                .ok_or_else(|| Status::invalid_argument("rule: required"))?,
        )?;
        Ok(Response::new(rule_pb(&self.0.update_rule(&c, rule)?)))
    }

    async fn delete_rule(
        &self,
        r: Request<pb::DeleteRuleRequest>,
    ) -> Reply<pb::DeleteRuleResponse> {
        let c = Caller::from_grpc(&r);
        self.0.delete_rule(&c, &r.into_inner().id)?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn explain(&self, r: Request<pb::ExplainRequest>) -> Reply<pb::ExplainResponse> {
        let r = r.into_inner();
        let account = if r.account_id.is_empty() {
            r.username
        } else {
            r.account_id
        };
        let candidate = r.candidate.map(rule_from).transpose()?;
        let d = self.0.explain(
            &account,
            &r.service_name,
            &r.tags,
            &r.action,
            r.at_unix,
            candidate,
        )?;
        Ok(Response::new(pb::ExplainResponse {
            decision: effect_pb(d.effect),
            rule_id: d.rule_id,
            trace: d
                .trace
                .into_iter()
                .map(|t| pb::RuleTrace {
                    rule_id: t.rule_id,
                    matched: t.matched,
                    mismatch: t.mismatch,
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl pb::audit_server::Audit for Services {
    async fn query_audit(
        &self,
        r: Request<pb::QueryAuditRequest>,
    ) -> Reply<pb::QueryAuditResponse> {
        let r = r.into_inner();
        let limit = if r.limit == 0 { 100 } else { r.limit as usize };
        let events = self
            .0
            .audit_log(limit, &r.action, &r.actor)?
            .into_iter()
            .filter(|e| {
                (r.since_unix == 0 || e.at >= r.since_unix)
                    && (r.until_unix == 0 || e.at < r.until_unix)
                    && e.seq > r.after_seq
            })
            .map(|e| pb::AuditEvent {
                seq: e.seq,
                at_unix: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                source_ip: e.source_ip,
                result: e.result,
                detail: e.detail,
            })
            .collect();
        Ok(Response::new(pb::QueryAuditResponse { events }))
    }
}

#[tonic::async_trait]
impl pb::mfa_server::Mfa for Services {
    async fn enroll_totp(
        &self,
        r: Request<pb::EnrollTotpRequest>,
    ) -> Reply<pb::EnrollTotpResponse> {
        let c = Caller::from_grpc(&r);
        let password = r.into_inner().password;
        let (secret, otpauth_uri) = self.0.totp_enroll(&c, &password).await?;
        Ok(Response::new(pb::EnrollTotpResponse {
            secret,
            otpauth_uri,
        }))
    }
    async fn confirm_totp(
        &self,
        r: Request<pb::ConfirmTotpRequest>,
    ) -> Reply<pb::ConfirmTotpResponse> {
        let c = Caller::from_grpc(&r);
        self.0.totp_confirm(&c, &r.into_inner().code)?;
        Ok(Response::new(pb::ConfirmTotpResponse {}))
    }
    async fn disable_totp(
        &self,
        r: Request<pb::DisableTotpRequest>,
    ) -> Reply<pb::DisableTotpResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        if !r.account_id.is_empty() {
            return Err(Status::invalid_argument(
                "account_id: only your own TOTP can be disabled for now",
            ));
        }
        self.0.totp_disable(&c, &r.password).await?;
        Ok(Response::new(pb::DisableTotpResponse {}))
    }
    async fn begin_passkey_registration(
        &self,
        r: Request<pb::BeginPasskeyRegistrationRequest>,
    ) -> Reply<pb::PasskeyChallenge> {
        let c = Caller::from_grpc(&r);
        let password = r.into_inner().password;
        let (challenge_id, options) = self.0.begin_passkey_registration(&c, &password).await?;
        Ok(Response::new(pb::PasskeyChallenge {
            challenge_id,
            options_json: options.to_string(),
        }))
    }
    async fn finish_passkey_registration(
        &self,
        r: Request<pb::FinishPasskeyRegistrationRequest>,
    ) -> Reply<pb::Passkey> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let k =
            self.0
                .finish_passkey_registration(&c, &r.challenge_id, &r.credential_json, &r.name)?;
        Ok(Response::new(passkey_pb(k)))
    }
    async fn begin_passkey_login(
        &self,
        r: Request<pb::BeginPasskeyLoginRequest>,
    ) -> Reply<pb::PasskeyChallenge> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let (challenge_id, options) =
            self.0
                .begin_passkey_login(&c, &r.username, &r.service_name, &r.tags)?;
        Ok(Response::new(pb::PasskeyChallenge {
            challenge_id,
            options_json: options.to_string(),
        }))
    }
    async fn finish_passkey_login(
        &self,
        r: Request<pb::FinishPasskeyLoginRequest>,
    ) -> Reply<pb::Session> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let s = self
            .0
            .finish_passkey_login(&c, &r.challenge_id, &r.credential_json)?;
        Ok(Response::new(session_pb(&self.0, s)?))
    }
    async fn list_passkeys(
        &self,
        r: Request<pb::ListPasskeysRequest>,
    ) -> Reply<pb::ListPasskeysResponse> {
        let c = Caller::from_grpc(&r);
        let passkeys = self
            .0
            .list_passkeys(&c, &r.into_inner().account_id)?
            .into_iter()
            .map(passkey_pb)
            .collect();
        Ok(Response::new(pb::ListPasskeysResponse { passkeys }))
    }
    async fn remove_passkey(
        &self,
        r: Request<pb::RemovePasskeyRequest>,
    ) -> Reply<pb::RemovePasskeyResponse> {
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0
            .remove_passkey(&c, &r.account_id, &r.id, &r.password)
            .await?;
        Ok(Response::new(pb::RemovePasskeyResponse {}))
    }
}

#[tonic::async_trait]
impl pb::sso_clients_server::SsoClients for Services {
    async fn list_clients(
        &self,
        _: Request<pb::ListClientsRequest>,
    ) -> Reply<pb::ListClientsResponse> {
        Ok(Response::new(pb::ListClientsResponse {
            clients: self.0.sso_clients()?.into_iter().map(sso_pb).collect(),
        }))
    }
    async fn get_client(&self, r: Request<pb::GetClientRequest>) -> Reply<pb::SsoClient> {
        Ok(Response::new(sso_pb(
            self.0.sso_client(&r.into_inner().client_id)?,
        )))
    }
    async fn create_client(
        &self,
        r: Request<pb::CreateClientRequest>,
    ) -> Reply<pb::CreateClientResponse> {
        let c = Caller::from_grpc(&r);
        let input = sso_input(r.into_inner().client)?;
        let (client, client_secret) = self.0.create_sso_client(&c, input)?;
        Ok(Response::new(pb::CreateClientResponse {
            client: Some(sso_pb(client)),
            client_secret,
        }))
    }
    async fn update_client(&self, r: Request<pb::UpdateClientRequest>) -> Reply<pb::SsoClient> {
        let c = Caller::from_grpc(&r);
        let input = sso_input(r.into_inner().client)?;
        Ok(Response::new(sso_pb(self.0.update_sso_client(&c, input)?)))
    }
    async fn delete_client(
        &self,
        r: Request<pb::DeleteClientRequest>,
    ) -> Reply<pb::DeleteClientResponse> {
        let c = Caller::from_grpc(&r);
        self.0.delete_sso_client(&c, &r.into_inner().client_id)?;
        Ok(Response::new(pb::DeleteClientResponse {}))
    }
}
