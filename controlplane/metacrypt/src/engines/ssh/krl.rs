//! The KRL encoder: OpenSSH's key revocation list (PROTOCOL.krl), the file
//! `sshd`'s `RevokedKeys` and `ssh-keygen -Q` read. Only what the CA
//! needs is written: the header and one certificate section for one CA key
//! holding a serial list and a key-id list. No signature section (sshd
//! does not check KRL signatures; the file comes from a trusted route).
//!
//! Invariants: serials are sorted, deduplicated and non-zero (OpenSSH
//! rejects serial 0 in a KRL); key ids are sorted and deduplicated; an
//! empty list writes no sub-section, and a KRL with nothing revoked is the
//! bare header (valid: it revokes nothing).

/// `"SSHKRL\n\0"`.
const MAGIC: u64 = 0x5353_484b_524c_0a00;
const FORMAT_VERSION: u32 = 1;
const SECTION_CERTIFICATES: u8 = 1;
const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_KEY_ID: u8 = 0x23;

/// What one KRL says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Krl<'a> {
    /// The counter a reader compares to know which KRL is newer.
    pub version: u64,
    /// Unix seconds.
    pub generated: u64,
    pub comment: &'a str,
    /// The CA's public key in SSH wire encoding (the certificate section's `ca_key`).
    pub ca_key: &'a [u8],
    pub serials: Vec<u64>,
    pub key_ids: Vec<String>,
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    // Lengths are bounded by the engine's limits (far below 4 GiB).
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn section(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    put_string(out, data);
}

impl Krl<'_> {
    /// The KRL's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.generated.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes()); // flags
        put_string(&mut out, b""); // reserved
        put_string(&mut out, self.comment.as_bytes());

        let mut serials: Vec<u64> = self.serials.iter().copied().filter(|s| *s != 0).collect();
        serials.sort_unstable();
        serials.dedup();
        let mut ids: Vec<&str> = self.key_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        if serials.is_empty() && ids.is_empty() {
            return out;
        }
        let mut certs = Vec::new();
        put_string(&mut certs, self.ca_key);
        put_string(&mut certs, b""); // reserved
        if !serials.is_empty() {
            let list: Vec<u8> = serials.iter().flat_map(|s| s.to_be_bytes()).collect();
            section(&mut certs, CERT_SERIAL_LIST, &list);
        }
        if !ids.is_empty() {
            let mut list = Vec::new();
            for id in ids {
                put_string(&mut list, id.as_bytes());
            }
            section(&mut certs, CERT_KEY_ID, &list);
        }
        section(&mut out, SECTION_CERTIFICATES, &certs);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_krl_is_the_bare_header() {
        let k = Krl {
            version: 7,
            generated: 1_700_000_000,
            comment: "c",
            ca_key: b"key",
            ..Krl::default()
        };
        let b = k.encode();
        assert_eq!(&b[..8], b"SSHKRL\n\0");
        assert_eq!(&b[8..12], &1u32.to_be_bytes());
        assert_eq!(&b[12..20], &7u64.to_be_bytes());
        // magic, format, version, date, flags, reserved (4), comment (4 + 1).
        assert_eq!(b.len(), 8 + 4 + 8 + 8 + 8 + 4 + 5);
    }

    #[test]
    fn serials_sorted_deduplicated_without_zero() {
        let k = Krl {
            ca_key: b"K",
            serials: vec![9, 0, 3, 9],
            ..Krl::default()
        };
        let b = k.encode();
        let header = 8 + 4 + 8 + 8 + 8 + 4 + 4;
        let s = &b[header..];
        assert_eq!(s[0], SECTION_CERTIFICATES);
        let body = &s[5..];
        // ca_key "K", reserved "", then the serial list of 3 and 9.
        assert_eq!(&body[..5], &[0, 0, 0, 1, b'K']);
        assert_eq!(&body[5..9], &[0, 0, 0, 0]);
        assert_eq!(body[9], CERT_SERIAL_LIST);
        assert_eq!(&body[10..14], &16u32.to_be_bytes());
        assert_eq!(&body[14..22], &3u64.to_be_bytes());
        assert_eq!(&body[22..30], &9u64.to_be_bytes());
        assert_eq!(body.len(), 30);
    }
}
