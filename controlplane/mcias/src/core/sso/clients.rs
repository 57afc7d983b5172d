//! SSO clients: registering, updating and deleting the OAuth 2.0 / OIDC
//! clients (exact redirect URIs, https or loopback http; secrets stored only
//! as SHA-256 and shown once), each change audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;

use crate::core::audit::audit;
use crate::core::{Caller, Mcias, now, random_token, sha256};
use crate::error::IamError;
use crate::model::{self, SsoClient};
use crate::store::{self as db, WriteTx as Tx};

pub const MAX_CLIENTS: usize = 1000;
const MAX_REDIRECT_URIS: usize = 10;

/// What an admin sends to create or update a client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub id_token_signed_response_alg: String,
}

pub(super) fn check_client_id(id: &str) -> Result<(), IamError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(IamError::invalid(
            "client_id",
            "1 to 64 characters of a-z, 0-9 and ._-",
        ))
    }
}

/// Exact https redirect URIs; plain http only for loopback hosts
/// (`127.0.0.1`, `[::1]`, `localhost`: native and dev clients, RFC 8252).
pub fn check_redirect_uri(uri: &str) -> Result<(), IamError> {
    let bad = |m: &str| IamError::invalid("redirect_uris", format!("`{uri}`: {m}"));
    if uri.len() > 512 {
        return Err(bad("at most 512 bytes"));
    }
    if uri.contains('#') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("no fragment, spaces or control characters"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("not absolute"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || authority.starts_with('[') => {
            if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("bad port"));
            }
            h
        }
        _ => authority,
    };
    if host.is_empty() || authority.contains('@') {
        return Err(bad("needs a host and no user info"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => Ok(()),
        _ => Err(bad("must be https (http only for loopback)")),
    }
}

fn validate(input: &ClientInput) -> Result<(String, Vec<String>, String), IamError> {
    if input.name.len() > 128 {
        return Err(IamError::invalid("name", "at most 128 bytes"));
    }
    if input.redirect_uris.is_empty() || input.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(IamError::invalid(
            "redirect_uris",
            format!("1 to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for u in &input.redirect_uris {
        check_redirect_uri(u)?;
    }
    let tags = model::check_tags(&input.tags)?;
    let alg = match input.id_token_signed_response_alg.as_str() {
        "" | "RS256" => crate::keys::RS256,
        "EdDSA" => crate::keys::EDDSA,
        other => {
            return Err(IamError::invalid(
                "id_token_signed_response_alg",
                format!("`{other}`: RS256 or EdDSA"),
            ));
        }
    };
    Ok((input.name.clone(), tags, alg.to_owned()))
}

impl Mcias {
    /// Client ids that would make a client's tokens MCIAS API tokens: the
    /// API audience (`[mcias] audience`) and the issuer are never clients.
    fn check_not_reserved(&self, id: &str) -> Result<(), IamError> {
        if id == self.config.audience || id == self.config.issuer || id == "mcias" {
            return Err(IamError::invalid(
                "client_id",
                format!("`{id}` is reserved (the MCIAS API's own audience)"),
            ));
        }
        Ok(())
    }

    pub fn sso_clients(&self) -> Result<Vec<SsoClient>, IamError> {
        let mut all: Vec<SsoClient> = self.read()?.all(db::SSO_CLIENTS)?;
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(all.iter().map(SsoClient::public).collect())
    }

    pub(super) fn stored_client(&self, id: &str) -> Result<Option<SsoClient>, IamError> {
        // A client stored with a reserved id before ids were reserved is gone.
        if check_client_id(id).is_err() || self.check_not_reserved(id).is_err() {
            return Ok(None);
        }
        Ok(self.read()?.get(db::SSO_CLIENTS, id.as_bytes())?)
    }

    pub fn sso_client(&self, id: &str) -> Result<SsoClient, IamError> {
        self.stored_client(id)?
            .map(|c| c.public())
            .ok_or_else(|| IamError::NotFound(format!("no SSO client `{id}`")))
    }

    /// Registers a client; returns it and its secret (shown once).
    pub fn create_sso_client(
        &self,
        caller: &Caller,
        input: ClientInput,
    ) -> Result<(SsoClient, String), IamError> {
        let (name, tags, alg) = validate(&input)?;
        let client_id = if input.client_id.is_empty() {
            format!("c-{}", uuid::Uuid::new_v4().simple())
        } else {
            input.client_id.clone()
        };
        check_client_id(&client_id)?;
        self.check_not_reserved(&client_id)?;
        let secret = random_token(32)?;
        let client = SsoClient {
            client_id,
            name,
            redirect_uris: input.redirect_uris,
            tags,
            enabled: input.enabled.unwrap_or(true),
            id_token_signed_response_alg: alg,
            secret_sha256: B64.encode(sha256(&secret)),
            created_at: now(),
        };
        let _g = self.lock();
        let existing: Vec<SsoClient> = self.read()?.all(db::SSO_CLIENTS)?;
        if existing.len() >= MAX_CLIENTS {
            return Err(IamError::invalid(
                "client",
                format!("at most {MAX_CLIENTS} clients"),
            ));
        }
        if existing.iter().any(|c| c.client_id == client.client_id) {
            return Err(IamError::Conflict(format!(
                "SSO client `{}` exists",
                client.client_id
            )));
        }
        self.save_client(caller, &client, "sso.clients.create")?;
        Ok((client.public(), secret))
    }

    /// Replaces name, redirect URIs, tags, enabled and algorithm (the secret stays).
    pub fn update_sso_client(
        &self,
        caller: &Caller,
        input: ClientInput,
    ) -> Result<SsoClient, IamError> {
        let (name, tags, alg) = validate(&input)?;
        self.check_not_reserved(&input.client_id)?;
        let _g = self.lock();
        let mut client = self
            .stored_client(&input.client_id)?
            .ok_or_else(|| IamError::NotFound(format!("no SSO client `{}`", input.client_id)))?;
        client.name = name;
        client.redirect_uris = input.redirect_uris;
        client.tags = tags;
        client.id_token_signed_response_alg = alg;
        if let Some(e) = input.enabled {
            client.enabled = e;
        }
        self.save_client(caller, &client, "sso.clients.update")?;
        Ok(client.public())
    }

    fn save_client(
        &self,
        caller: &Caller,
        client: &SsoClient,
        action: &str,
    ) -> Result<(), IamError> {
        let tx = Tx::begin(&self.store)?;
        tx.put(db::SSO_CLIENTS, client.client_id.as_bytes(), client)?;
        audit(
            &tx,
            caller,
            action,
            &client.client_id,
            "ok",
            format!(
                "enabled={} alg={} redirect_uris={}",
                client.enabled,
                client.id_token_signed_response_alg,
                client.redirect_uris.join(" ")
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_sso_client(&self, caller: &Caller, id: &str) -> Result<(), IamError> {
        let _g = self.lock();
        self.sso_client(id)?;
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::SSO_CLIENTS.def(), id.as_bytes())?;
        audit(&tx, caller, "sso.clients.delete", id, "ok", "")?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http() {
        for ok in [
            "https://app.example.net/cb",
            "https://app.example.net:8443/cb?x=1",
            "http://127.0.0.1:4711/cb",
            "http://localhost/cb",
            "http://[::1]:80/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.net/cb",
            "https://app.example.net/cb#frag",
            "https:///cb",
            "https://user@app.example.net/cb",
            "app.example.net/cb",
            "javascript://x",
            "http://127.0.0.1.evil.net/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
