//! TOTP enrolment for the caller: enroll (needs the password), confirm with
//! a current code (from then on logins need a code), disable (needs the
//! password; both re-checks count failures like logins do). The RFC 6238
//! arithmetic and sealing are [`crate::totp`]; the login step that checks a
//! code is [`crate::core::login`].

use crate::core::{Caller, Mcias, now};
use crate::error::IamError;
use crate::model::AccountType;

impl Mcias {
    /// Starts TOTP enrolment (requires the password): returns the base32
    /// secret and the otpauth URL. Takes effect once confirmed with a code.
    pub async fn totp_enroll(
        &self,
        caller: &Caller,
        password: &str,
    ) -> Result<(String, String), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if account.account_type != AccountType::Human {
            return Err(IamError::invalid("account", "TOTP is for human accounts"));
        }
        self.recheck_password(caller, &account, password, "mfa.totp.enroll")
            .await?;
        if account.totp_enabled {
            return Err(IamError::Conflict(
                "TOTP is already enabled; disable it first".to_owned(),
            ));
        }
        let (sealed, secret, url) = crate::totp::enroll(&self.master, &account)?;
        self.modify(caller, &account.id, "mfa.totp.enroll", String::new(), |a| {
            a.totp_sealed = sealed;
            a.totp_enabled = false;
            a.totp_last_step = 0;
            Ok(())
        })?;
        Ok((secret, url))
    }

    /// Confirms enrolment with a current code; from then on logins need a code.
    pub fn totp_confirm(&self, caller: &Caller, code: &str) -> Result<(), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if account.totp_sealed.is_empty() || account.totp_enabled {
            return Err(IamError::invalid("code", "no TOTP enrolment is pending"));
        }
        let Some(step) = crate::totp::check(
            &self.master,
            &account,
            code,
            u64::try_from(now()).unwrap_or(0),
        )?
        else {
            return Err(IamError::invalid("code", "the code does not match"));
        };
        self.modify(
            caller,
            &account.id,
            "mfa.totp.confirm",
            String::new(),
            |a| {
                a.totp_enabled = true;
                a.totp_last_step = step;
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Turns TOTP off (requires the password).
    pub async fn totp_disable(&self, caller: &Caller, password: &str) -> Result<(), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        self.recheck_password(caller, &account, password, "mfa.totp.disable")
            .await?;
        self.modify(
            caller,
            &account.id,
            "mfa.totp.disable",
            String::new(),
            |a| {
                a.totp_sealed.clear();
                a.totp_enabled = false;
                Ok(())
            },
        )?;
        Ok(())
    }
}
