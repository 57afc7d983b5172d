//! The user engine's ciphertext: `mcuser:v1:` + base64url (no padding) of
//! `header ‖ enc(32) ‖ ciphertext ‖ tag(16)`, where the header is
//! `len ‖ recipient id ‖ recipient key version (u32 BE) ‖ len ‖ sender id ‖
//! sender key version (u32 BE)` (ids length-prefixed by one byte). The
//! header is HPKE's `info` (after a domain label) and the AAD, so editing
//! any field makes the message fail to open.
//!
//! Invariant: [`parse`] is total: any input gives a message or an error
//! naming `ciphertext`, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::hpke::KEY_LEN;
use crate::error::CryptError;

const PREFIX: &str = "mcuser:v1:";
/// HPKE `info` is this label ‖ the header.
pub(crate) const INFO_LABEL: &[u8] = b"mc-crypt/user/v1\0";

/// The parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub recipient: String,
    pub recipient_version: u32,
    pub sender: String,
    pub sender_version: u32,
    /// `enc ‖ ciphertext ‖ tag`.
    pub sealed: Vec<u8>,
}

impl Message {
    pub(crate) fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(10 + self.recipient.len() + self.sender.len());
        for (id, v) in [
            (&self.recipient, self.recipient_version),
            (&self.sender, self.sender_version),
        ] {
            // Ids are checked to be at most 255 bytes before encoding.
            h.push(id.len().min(255) as u8);
            h.extend_from_slice(id.as_bytes());
            h.extend_from_slice(&v.to_be_bytes());
        }
        h
    }

    pub(crate) fn info(&self) -> Vec<u8> {
        let mut i = INFO_LABEL.to_vec();
        i.extend_from_slice(&self.header());
        i
    }

    pub(crate) fn encode(&self) -> String {
        let mut b = self.header();
        b.extend_from_slice(&self.sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }
}

fn bad(why: &str) -> CryptError {
    CryptError::invalid("ciphertext", why)
}

/// An id fits the header (one length byte).
pub(crate) fn check_id(id: &str) -> Result<(), CryptError> {
    if id.is_empty() || id.len() > 255 {
        return Err(CryptError::invalid("account", "1 to 255 bytes"));
    }
    Ok(())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], CryptError> {
    if b.len() < n {
        return Err(bad("truncated"));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn field(b: &mut &[u8]) -> Result<(String, u32), CryptError> {
    let len = usize::from(take(b, 1)?[0]);
    let id = std::str::from_utf8(take(b, len)?).map_err(|_| bad("an account id is not UTF-8"))?;
    if id.is_empty() {
        return Err(bad("an empty account id"));
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(take(b, 4)?);
    let v = u32::from_be_bytes(v);
    if v == 0 {
        return Err(bad("key version 0"));
    }
    Ok((id.to_owned(), v))
}

/// Parses `mcuser:v1:…`.
pub(crate) fn parse(text: &str) -> Result<Message, CryptError> {
    let body = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("not a user-engine ciphertext (mcuser:v1:…)"))?;
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad("not base64url"))?;
    let mut b = raw.as_slice();
    let (recipient, recipient_version) = field(&mut b)?;
    let (sender, sender_version) = field(&mut b)?;
    if b.len() < KEY_LEN + 16 {
        return Err(bad("truncated"));
    }
    Ok(Message {
        recipient,
        recipient_version,
        sender,
        sender_version,
        sealed: b.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_parse_round_trip_and_refusals_name_the_field() {
        let m = Message {
            recipient: "acct-b".to_owned(),
            recipient_version: 2,
            sender: "acct-a".to_owned(),
            sender_version: 1,
            sealed: vec![7; 60],
        };
        let text = m.encode();
        assert!(text.starts_with("mcuser:v1:"), "{text}");
        assert_eq!(parse(&text).expect("parses"), m);
        for bad in [
            "",
            "vault:v1:AAAA",
            "mcuser:v1:***",
            "mcuser:v1:AA",
            &text[..30],
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.to_string().contains("ciphertext"), "{bad}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "mcuser:v1:[A-Za-z0-9_-]{0,200}") {
            let _ = parse(&s);
        }
    }
}
