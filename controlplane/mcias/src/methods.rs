//! The one method → requirement map of MCIAS, for REST and gRPC alike.
//! A route or RPC missing here is denied to everyone (see `mc_service::auth`).

use mc_service::auth::{MethodMap, Requirement::*};

pub fn map() -> MethodMap {
    MethodMap::new()
        // REST: sessions (fixed paths other services build on).
        .rest("POST", "/v1/auth/login", Public)
        .rest("POST", "/v1/auth/validate", Public)
        .rest("GET", "/v1/auth/jwks", Public)
        .rest("POST", "/v1/auth/reset", Public)
        .rest("POST", "/v1/auth/logout", Authenticated)
        .rest("POST", "/v1/auth/renew", Authenticated)
        .rest("POST", "/v1/auth/password", Authenticated)
        .rest("GET", "/v1/iam/whoami", Authenticated)
        .rest("POST", "/v1/iam/totp/enroll", Authenticated)
        .rest("POST", "/v1/iam/totp/confirm", Authenticated)
        .rest("POST", "/v1/iam/totp/disable", Authenticated)
        .rest("POST", "/v1/auth/passkey/begin", Public)
        .rest("POST", "/v1/auth/passkey/finish", Public)
        .rest("GET", "/v1/iam/passkeys", Authenticated)
        .rest("DELETE", "/v1/iam/passkeys/{id}", Authenticated)
        .rest("POST", "/v1/iam/passkeys/register/begin", Authenticated)
        .rest("POST", "/v1/iam/passkeys/register/finish", Authenticated)
        // REST: administration.
        .rest("GET", "/v1/iam/accounts", Admin)
        .rest("POST", "/v1/iam/accounts", Admin)
        .rest("GET", "/v1/iam/accounts/{id}", Admin)
        .rest("PATCH", "/v1/iam/accounts/{id}", Admin)
        .rest("DELETE", "/v1/iam/accounts/{id}", Admin)
        .rest("PUT", "/v1/iam/accounts/{id}/roles", Admin)
        .rest("PUT", "/v1/iam/accounts/{id}/tags", Admin)
        .rest("POST", "/v1/iam/accounts/{id}/reset-token", Admin)
        .rest("GET", "/v1/iam/tokens", Admin)
        .rest("POST", "/v1/iam/tokens", Admin)
        .rest("DELETE", "/v1/iam/tokens/{jti}", Admin)
        .rest("POST", "/v1/iam/tokens/check", Authenticated)
        .rest("POST", "/v1/iam/keys/rotate", Admin)
        .rest("GET", "/v1/iam/policy", Admin)
        .rest("POST", "/v1/iam/policy", Admin)
        .rest("GET", "/v1/iam/policy/{id}", Admin)
        .rest("PUT", "/v1/iam/policy/{id}", Admin)
        .rest("DELETE", "/v1/iam/policy/{id}", Admin)
        .rest("POST", "/v1/iam/policy/explain", Admin)
        .rest("GET", "/v1/iam/audit", Admin)
        .rest("GET", "/v1/sso/clients", Admin)
        .rest("POST", "/v1/sso/clients", Admin)
        .rest("GET", "/v1/sso/clients/{id}", Admin)
        .rest("PUT", "/v1/sso/clients/{id}", Admin)
        .rest("DELETE", "/v1/sso/clients/{id}", Admin)
        // OAuth 2.0 / OIDC: public by protocol (the client authenticates
        // to the token endpoint with its secret; userinfo takes an SSO
        // access token, checked by the handler).
        .rest("GET", "/.well-known/openid-configuration", Public)
        .rest("GET", "/oauth2/authorize", Public)
        .rest("POST", "/oauth2/token", Public)
        .rest("GET", "/oauth2/userinfo", Public)
        .rest("POST", "/oauth2/userinfo", Public)
        // Web UI: public at this layer, because browsers carry the session
        // in a cookie, not a bearer token: `ui::guard` resolves the cookie,
        // redirects to the login page without one, refuses non-admins on
        // /ui/admin/… (403) and checks CSRF on every POST.
        .rest("GET", "/ui/login", Public)
        .rest("POST", "/ui/login", Public)
        .rest("POST", "/ui/login/totp", Public)
        .rest("GET", "/ui/assets/htmx.min.js", Public)
        .rest("GET", "/ui/assets/style.css", Public)
        .rest("GET", "/ui/assets/passkey.js", Public)
        .rest("POST", "/ui/login/passkey", Public)
        .rest("POST", "/ui/passkeys/begin", Public)
        .rest("POST", "/ui/passkeys/finish", Public)
        .rest("POST", "/ui/passkeys/{id}/remove", Public)
        .rest("POST", "/ui/logout", Public)
        .rest("GET", "/ui/", Public)
        .rest("POST", "/ui/password", Public)
        .rest("POST", "/ui/totp/enroll", Public)
        .rest("POST", "/ui/totp/confirm", Public)
        .rest("GET", "/ui/admin/accounts", Public)
        .rest("POST", "/ui/admin/accounts", Public)
        .rest("POST", "/ui/admin/accounts/{id}/status", Public)
        .rest("POST", "/ui/admin/accounts/{id}/roles", Public)
        .rest("GET", "/ui/admin/policy", Public)
        .rest("POST", "/ui/admin/policy", Public)
        .rest("POST", "/ui/admin/policy/{id}/delete", Public)
        .rest("GET", "/ui/admin/tester", Public)
        .rest("POST", "/ui/admin/tester", Public)
        .rest("GET", "/ui/admin/sso", Public)
        .rest("POST", "/ui/admin/sso", Public)
        .rest("POST", "/ui/admin/sso/{id}/delete", Public)
        .rest("GET", "/ui/admin/audit", Public)
        // gRPC mc.iam.v1 (same meanings as above).
        .grpc("/mc.iam.v1.Auth/Login", Public)
        .grpc("/mc.iam.v1.Auth/Validate", Public)
        .grpc("/mc.iam.v1.Auth/GetJwks", Public)
        .grpc("/mc.iam.v1.Auth/Logout", Authenticated)
        .grpc("/mc.iam.v1.Auth/Renew", Authenticated)
        .grpc("/mc.iam.v1.Auth/ChangePassword", Authenticated)
        .grpc("/mc.iam.v1.Accounts/CreateAccount", Admin)
        .grpc("/mc.iam.v1.Accounts/GetAccount", Admin)
        .grpc("/mc.iam.v1.Accounts/ListAccounts", Admin)
        .grpc("/mc.iam.v1.Accounts/UpdateAccount", Admin)
        .grpc("/mc.iam.v1.Accounts/DeleteAccount", Admin)
        .grpc("/mc.iam.v1.Accounts/SetRoles", Admin)
        .grpc("/mc.iam.v1.Accounts/SetTags", Admin)
        .grpc("/mc.iam.v1.Accounts/CreateResetToken", Admin)
        .grpc("/mc.iam.v1.Accounts/RedeemResetToken", Public)
        .grpc("/mc.iam.v1.Mfa/EnrollTotp", Authenticated)
        .grpc("/mc.iam.v1.Mfa/ConfirmTotp", Authenticated)
        .grpc("/mc.iam.v1.Mfa/DisableTotp", Authenticated)
        .grpc("/mc.iam.v1.Mfa/BeginPasskeyRegistration", Authenticated)
        .grpc("/mc.iam.v1.Mfa/FinishPasskeyRegistration", Authenticated)
        .grpc("/mc.iam.v1.Mfa/BeginPasskeyLogin", Public)
        .grpc("/mc.iam.v1.Mfa/FinishPasskeyLogin", Public)
        .grpc("/mc.iam.v1.Mfa/ListPasskeys", Authenticated)
        .grpc("/mc.iam.v1.Mfa/RemovePasskey", Authenticated)
        .grpc("/mc.iam.v1.Tokens/IssueSystemToken", Admin)
        .grpc("/mc.iam.v1.Tokens/ListTokens", Admin)
        .grpc("/mc.iam.v1.Tokens/RevokeToken", Admin)
        .grpc("/mc.iam.v1.Tokens/CheckRevocation", Authenticated)
        .grpc("/mc.iam.v1.Tokens/RotateSigningKey", Admin)
        .grpc("/mc.iam.v1.Policy/ListRules", Admin)
        .grpc("/mc.iam.v1.Policy/GetRule", Admin)
        .grpc("/mc.iam.v1.Policy/CreateRule", Admin)
        .grpc("/mc.iam.v1.Policy/UpdateRule", Admin)
        .grpc("/mc.iam.v1.Policy/DeleteRule", Admin)
        .grpc("/mc.iam.v1.Policy/Explain", Admin)
        .grpc("/mc.iam.v1.SsoClients/ListClients", Admin)
        .grpc("/mc.iam.v1.SsoClients/GetClient", Admin)
        .grpc("/mc.iam.v1.SsoClients/CreateClient", Admin)
        .grpc("/mc.iam.v1.SsoClients/UpdateClient", Admin)
        .grpc("/mc.iam.v1.SsoClients/DeleteClient", Admin)
        .grpc("/mc.iam.v1.Audit/QueryAudit", Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forgetting an RPC in the map fails here (and the RPC is denied to everyone).
    #[test]
    fn every_iam_rpc_is_in_the_map_and_nothing_else_is() {
        let map = map();
        let rpcs = mc_proto::grpc_methods("mc.iam.v1");
        assert!(
            rpcs.len() > 30,
            "descriptor enumerates the services: {rpcs:?}"
        );
        for rpc in &rpcs {
            assert!(
                map.get(rpc).is_some(),
                "{rpc} is missing from the method map"
            );
        }
        for (key, _) in map.entries().filter(|(k, _)| k.starts_with('/')) {
            assert!(
                rpcs.iter().any(|r| r == key),
                "{key} is mapped but no such RPC exists"
            );
        }
    }
}
