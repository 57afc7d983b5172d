//! Shamir secret sharing of a 32-byte secret over GF(2^8), and the share
//! text codec.
//!
//! Field: the AES polynomial 0x11b; multiplication by shift-and-mask with no
//! table lookups (constant time), inversion as a^254. Shares have x
//! coordinates 1…n and fresh random coefficients per byte; combining is
//! Lagrange interpolation at 0. Limits: 2 ≤ k ≤ n ≤ 16.
//!
//! A share is `mcs1-` + base64url(set id 4 ‖ x 1 ‖ y 32 ‖ check 4), check
//! being the first 4 bytes of SHA-256 of the rest, so a mistyped share is
//! refused before it counts as an attempt.
//!
//! Invariant: fewer than k shares reveal nothing about the secret; every
//! buffer holding a share value or coefficient is zeroized on drop.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

pub(crate) const SECRET_LEN: usize = 32;
pub(crate) const MAX_SHARES: u8 = 16;
const PREFIX: &str = "mcs1-";
const RAW_LEN: usize = 4 + 1 + SECRET_LEN + 4;

/// One share: which set, its x, its y bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Share {
    pub(crate) set_id: u32,
    pub(crate) x: u8,
    pub(crate) y: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share {{ set_id: {}, x: {} }}", self.set_id, self.x)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShareError {
    #[error("not a Metacrypt share (expected mcs1-…)")]
    Format,
    #[error("the share's check digits do not match (mistyped?)")]
    Check,
    #[error("shares: need 2 ≤ threshold ≤ shares ≤ 16")]
    Limits,
    #[error("two shares have the same x")]
    Duplicate,
    #[error("shares from different sets")]
    ForeignSet,
    #[error("not enough shares")]
    TooFew,
}

/// a·b in GF(2^8) mod 0x11b, without branches on secret data.
pub(crate) fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & hi);
        b >>= 1;
    }
    p
}

/// a^-1 = a^254 (0 maps to 0).
pub(crate) fn gf_inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = gf_mul(result, base);
        }
        base = gf_mul(base, base);
        e >>= 1;
    }
    result
}

/// Splits `secret` into `n` shares, any `k` of which recover it.
pub(crate) fn split(
    secret: &[u8; SECRET_LEN],
    n: u8,
    k: u8,
    set_id: u32,
) -> Result<Vec<Share>, ShareError> {
    if !(2..=MAX_SHARES).contains(&n) || k < 2 || k > n {
        return Err(ShareError::Limits);
    }
    let mut coeffs = Zeroizing::new(vec![0u8; SECRET_LEN * usize::from(k - 1)]);
    aws_lc_rs::rand::fill(&mut coeffs).map_err(|_| ShareError::Limits)?;
    let mut shares = Vec::with_capacity(usize::from(n));
    for x in 1..=n {
        let mut y = Zeroizing::new([0u8; SECRET_LEN]);
        for (i, out) in y.iter_mut().enumerate() {
            // Horner: ((c_{k-1}·x + c_{k-2})·x + …)·x + secret.
            let mut acc = 0u8;
            for j in (0..usize::from(k - 1)).rev() {
                acc = gf_mul(acc, x) ^ coeffs[j * SECRET_LEN + i];
            }
            *out = gf_mul(acc, x) ^ secret[i];
        }
        shares.push(Share { set_id, x, y });
    }
    Ok(shares)
}

/// Recovers the secret from `shares` (at least `k`; exactly the first `k`
/// are used). Fewer than `k` is refused; a wrong set of k gives a wrong
/// secret, which the slot's AEAD then refuses.
pub(crate) fn combine(shares: &[Share], k: u8) -> Result<Zeroizing<[u8; SECRET_LEN]>, ShareError> {
    if shares.len() < usize::from(k) || k < 2 {
        return Err(ShareError::TooFew);
    }
    let used = &shares[..usize::from(k)];
    for (i, a) in used.iter().enumerate() {
        if a.x == 0 {
            return Err(ShareError::Format);
        }
        if a.set_id != used[0].set_id {
            return Err(ShareError::ForeignSet);
        }
        if used[..i].iter().any(|b| b.x == a.x) {
            return Err(ShareError::Duplicate);
        }
    }
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    for (i, si) in used.iter().enumerate() {
        // Lagrange basis at 0: Π x_j / (x_j - x_i); subtraction is xor.
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in used.iter().enumerate() {
            if i != j {
                num = gf_mul(num, sj.x);
                den = gf_mul(den, sj.x ^ si.x);
            }
        }
        let l = gf_mul(num, gf_inv(den));
        for (b, out) in secret.iter_mut().enumerate() {
            *out ^= gf_mul(si.y[b], l);
        }
    }
    Ok(secret)
}

fn check(body: &[u8]) -> [u8; 4] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    let mut c = [0u8; 4];
    c.copy_from_slice(&d.as_ref()[..4]);
    c
}

/// The share's text form.
pub(crate) fn encode(share: &Share) -> Zeroizing<String> {
    let mut raw = Zeroizing::new(Vec::with_capacity(RAW_LEN));
    raw.extend_from_slice(&share.set_id.to_be_bytes());
    raw.push(share.x);
    raw.extend_from_slice(share.y.as_ref());
    let c = check(&raw);
    raw.extend_from_slice(&c);
    Zeroizing::new(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&raw)))
}

/// Parses a share's text form (pure; fuzzed).
pub(crate) fn decode(text: &str) -> Result<Share, ShareError> {
    let body = text.trim().strip_prefix(PREFIX).ok_or(ShareError::Format)?;
    if body.len() > 64 {
        return Err(ShareError::Format);
    }
    let raw = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| ShareError::Format)?,
    );
    if raw.len() != RAW_LEN {
        return Err(ShareError::Format);
    }
    let (rest, c) = raw.split_at(RAW_LEN - 4);
    if check(rest) != c {
        return Err(ShareError::Check);
    }
    let mut set = [0u8; 4];
    set.copy_from_slice(&rest[..4]);
    let x = rest[4];
    if x == 0 || x > MAX_SHARES {
        return Err(ShareError::Format);
    }
    let mut y = Zeroizing::new([0u8; SECRET_LEN]);
    y.copy_from_slice(&rest[5..]);
    Ok(Share {
        set_id: u32::from_be_bytes(set),
        x,
        y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> [u8; SECRET_LEN] {
        let mut s = [0u8; SECRET_LEN];
        aws_lc_rs::rand::fill(&mut s).expect("rand");
        s
    }

    /// Every subset of `0..n` of size `k`.
    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..(1 << n))
            .filter(|m| m.count_ones() as usize == k)
            .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn gf_mul_matches_a_log_table_oracle_on_all_pairs() {
        // exp/log tables over generator 3.
        let mut exp = [0u8; 512];
        let mut log = [0usize; 256];
        let mut v = 1u8;
        for (i, e) in exp.iter_mut().enumerate().take(255) {
            *e = v;
            log[usize::from(v)] = i;
            v ^= (v << 1) ^ if v & 0x80 != 0 { 0x1b } else { 0 };
        }
        for i in 255..512 {
            exp[i] = exp[i - 255];
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let want = if a == 0 || b == 0 {
                    0
                } else {
                    exp[log[usize::from(a)] + log[usize::from(b)]]
                };
                assert_eq!(gf_mul(a, b), want, "{a}·{b}");
            }
            if a != 0 {
                assert_eq!(gf_mul(a, gf_inv(a)), 1, "inverse of {a}");
            }
        }
    }

    #[test]
    fn every_k_subset_recovers_and_k_minus_1_does_not() {
        for (n, k) in [(5u8, 3u8), (16, 5), (2, 2)] {
            let s = secret();
            let shares = split(&s, n, k, 7).expect("split");
            for set in subsets(usize::from(n), usize::from(k))
                .into_iter()
                .take(600)
            {
                let picked: Vec<Share> = set.iter().map(|&i| shares[i].clone()).collect();
                assert_eq!(*combine(&picked, k).expect("combine"), s, "{n}/{k} {set:?}");
            }
            let few: Vec<Share> = shares[..usize::from(k - 1)].to_vec();
            assert_eq!(combine(&few, k), Err(ShareError::TooFew));
            // k-1 shares plus a forged one combine to something else.
            let mut forged = few.clone();
            let mut y = Zeroizing::new([0u8; SECRET_LEN]);
            aws_lc_rs::rand::fill(y.as_mut()).expect("rand");
            forged.push(Share {
                set_id: 7,
                x: n.max(k),
                y,
            });
            if let Ok(wrong) = combine(&forged, k) {
                assert_ne!(*wrong, s, "k-1 real shares must not give the secret");
            }
        }
    }

    #[test]
    fn duplicate_x_foreign_set_and_bad_limits_are_refused() {
        let s = secret();
        assert_eq!(split(&s, 17, 3, 1).err(), Some(ShareError::Limits));
        assert_eq!(split(&s, 3, 1, 1).err(), Some(ShareError::Limits));
        assert_eq!(split(&s, 3, 4, 1).err(), Some(ShareError::Limits));
        let a = split(&s, 5, 3, 1).expect("split");
        let b = split(&s, 5, 3, 2).expect("split");
        let dup = vec![a[0].clone(), a[0].clone(), a[1].clone()];
        assert_eq!(combine(&dup, 3).err(), Some(ShareError::Duplicate));
        let mixed = vec![a[0].clone(), b[1].clone(), a[2].clone()];
        assert_eq!(combine(&mixed, 3).err(), Some(ShareError::ForeignSet));
    }

    #[test]
    fn the_text_codec_round_trips_and_catches_typos() {
        let s = secret();
        for share in split(&s, 5, 3, 0xdead_beef).expect("split") {
            let text = encode(&share);
            assert!(text.starts_with("mcs1-"));
            assert_eq!(decode(&text).expect("decode"), share);
            // Flip one character of the body.
            let mut chars: Vec<char> = text.chars().collect();
            let i = 10;
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let typo: String = chars.into_iter().collect();
            assert!(matches!(
                decode(&typo),
                Err(ShareError::Check | ShareError::Format)
            ));
        }
        assert_eq!(decode("hello").err(), Some(ShareError::Format));
        assert_eq!(decode("mcs1-!!!").err(), Some(ShareError::Format));
    }
}
