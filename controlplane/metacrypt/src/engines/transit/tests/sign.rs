//! Signatures: known answers (RFC 8032, RFC 6979) and independent verifiers
//! (aws-lc-rs for RustCrypto's ECDSA; openssl for RSA, P-384/SHA-224 and the
//! exported private keys).

use std::path::Path;
use std::process::Command;

use aws_lc_rs::signature as awssig;

use super::*;
use crate::engines::transit::ciphertext::{Alphabet, parse};

fn params(f: impl FnOnce(&mut SignParams)) -> SignParams {
    let mut p = SignParams::default();
    f(&mut p);
    p
}

fn sign(k: &TransitKey, p: &SignParams, input: &[u8]) -> SignOut {
    k.sign(
        p,
        &SignItem {
            input: Some(b64(input)),
            ..Default::default()
        },
    )
    .unwrap()
}

fn verify(
    k: &TransitKey,
    p: &SignParams,
    input: &[u8],
    signature: &str,
) -> Result<bool, TransitError> {
    k.verify(
        p,
        &VerifyItem {
            input: Some(b64(input)),
            signature: Some(signature.into()),
            ..Default::default()
        },
    )
    .map(|v| v.valid)
}

fn body(sig: &str, a: Alphabet) -> Vec<u8> {
    parse("signature", sig, a).unwrap().body
}

fn flip_last(sig: &str, a: Alphabet) -> String {
    let mut b = body(sig, a);
    let n = b.len() - 1;
    b[n] ^= 1;
    ciphertext::encode(1, &b, a)
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn ed25519_matches_rfc8032_test_1() {
    let k = with_material(
        "ed25519",
        &hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    );
    let pk = k.cache[&1].public_key_text().unwrap();
    assert_eq!(
        unb64(&pk),
        hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    );
    let s = sign(&k, &SignParams::default(), b"");
    let want = hex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    assert_eq!(body(&s.signature, Alphabet::Standard), want);
    assert!(verify(&k, &SignParams::default(), b"", &s.signature).unwrap());
    assert!(!verify(&k, &SignParams::default(), b"x", &s.signature).unwrap());
    assert!(
        !verify(
            &k,
            &SignParams::default(),
            b"",
            &flip_last(&s.signature, Alphabet::Standard)
        )
        .unwrap()
    );
    assert!(
        k.sign(
            &params(|p| p.prehashed = Some(true)),
            &SignItem {
                input: Some(b64(b"x")),
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn ecdsa_p256_matches_rfc6979_a_2_5() {
    let k = with_material(
        "ecdsa-p256",
        &hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"),
    );
    let s = sign(
        &k,
        &params(|p| p.marshaling_algorithm = Some("jws".into())),
        b"sample",
    );
    let rs = body(&s.signature, Alphabet::UrlNoPad);
    assert_eq!(
        rs[..32],
        hex("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716")
    );
    assert_eq!(
        rs[32..],
        hex("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")
    );
    assert!(!s.signature.contains('='), "JWS is unpadded base64url");
}

fn aws_ecdsa_alg(kind: &str, hash: &str) -> Option<&'static awssig::EcdsaVerificationAlgorithm> {
    Some(match (kind, hash) {
        ("ecdsa-p256", "sha2-256") => &awssig::ECDSA_P256_SHA256_ASN1,
        ("ecdsa-p256", "sha2-384") => &awssig::ECDSA_P256_SHA384_ASN1,
        ("ecdsa-p256", "sha2-512") => &awssig::ECDSA_P256_SHA512_ASN1,
        ("ecdsa-p384", "sha2-256") => &awssig::ECDSA_P384_SHA256_ASN1,
        ("ecdsa-p384", "sha2-384") => &awssig::ECDSA_P384_SHA384_ASN1,
        ("ecdsa-p384", "sha2-512") => &awssig::ECDSA_P384_SHA512_ASN1,
        _ => return None,
    })
}

fn uncompressed_point(k: &TransitKey) -> Vec<u8> {
    match &k.cache[&1].engine {
        material::Engine::P256(s) => s.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        material::Engine::P384(s) => s.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        _ => unreachable!(),
    }
}

#[test]
fn ecdsa_signatures_verify_with_aws_lc_rs_and_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let msg = b"the quick brown fox";
    std::fs::write(dir.path().join("msg"), msg).unwrap();
    for kind in ["ecdsa-p256", "ecdsa-p384"] {
        let k = key(kind);
        std::fs::write(
            dir.path().join("pub.pem"),
            k.state().versions[&1].public_key.as_deref().unwrap(),
        )
        .unwrap();
        let point = uncompressed_point(&k);
        for hash in ["sha2-224", "sha2-256", "sha2-384", "sha2-512"] {
            let p = params(|p| p.hash_algorithm = Some(hash.into()));
            let s = sign(&k, &p, msg);
            let der = body(&s.signature, Alphabet::Standard);
            if let Some(alg) = aws_ecdsa_alg(kind, hash) {
                awssig::UnparsedPublicKey::new(alg, &point)
                    .verify(msg, &der)
                    .unwrap();
            }
            std::fs::write(dir.path().join("sig"), &der).unwrap();
            let dgst = format!("-{}", hash.replace("sha2-", "sha"));
            let (ok, out) = openssl(
                dir.path(),
                &[
                    "dgst",
                    &dgst,
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig",
                    "msg",
                ],
            );
            assert!(ok, "{kind} {hash}: {out}");
            assert!(verify(&k, &p, msg, &s.signature).unwrap());
            assert!(!verify(&k, &p, b"other", &s.signature).unwrap());
            assert!(
                !verify(
                    &k,
                    &params(|p| p.hash_algorithm = Some("sha2-512".into())),
                    msg,
                    &s.signature
                )
                .unwrap()
                    || hash == "sha2-512"
            );
            // Prehashed: the caller's digest gives the same verification.
            let d = Hash::parse("h", hash).unwrap().digest(msg);
            let pre = params(|p| {
                p.hash_algorithm = Some(hash.into());
                p.prehashed = Some(true);
            });
            let s2 = sign(&k, &pre, d.as_ref());
            assert!(
                verify(&k, &p, msg, &s2.signature).unwrap(),
                "{kind} {hash} prehashed"
            );
            assert!(
                k.sign(
                    &pre,
                    &SignItem {
                        input: Some(b64(b"short")),
                        ..Default::default()
                    }
                )
                .is_err()
            );
        }
        // JWS marshaling: r ‖ s, and a DER signature does not pass as JWS.
        let jws = params(|p| p.marshaling_algorithm = Some("jws".into()));
        let s = sign(&k, &jws, msg);
        assert_eq!(
            body(&s.signature, Alphabet::UrlNoPad).len(),
            if kind == "ecdsa-p256" { 64 } else { 96 }
        );
        assert!(verify(&k, &jws, msg, &s.signature).unwrap());
        assert!(!verify(&k, &jws, msg, &flip_last(&s.signature, Alphabet::UrlNoPad)).unwrap());
        let asn1 = sign(&k, &SignParams::default(), msg);
        assert!(!verify(&k, &jws, msg, &asn1.signature).unwrap_or(false));
        assert!(
            !verify(&key(kind), &SignParams::default(), msg, &asn1.signature).unwrap(),
            "another key"
        );
    }
}

#[test]
fn rsa_pss_and_pkcs1_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let msg = b"pay 100 to alice";
    std::fs::write(dir.path().join("msg"), msg).unwrap();
    for kind in ["rsa-2048", "rsa-3072"] {
        let k = key(kind);
        std::fs::write(
            dir.path().join("pub.pem"),
            k.state().versions[&1].public_key.as_deref().unwrap(),
        )
        .unwrap();
        for (alg, hash) in [
            ("pss", "sha2-256"),
            ("pss", "sha2-512"),
            ("pkcs1v15", "sha2-256"),
            ("pkcs1v15", "sha2-384"),
        ] {
            let p = params(|p| {
                p.signature_algorithm = Some(alg.into());
                p.hash_algorithm = Some(hash.into());
            });
            let s = sign(&k, &p, msg);
            let raw = body(&s.signature, Alphabet::Standard);
            assert_eq!(raw.len() * 8, if kind == "rsa-2048" { 2048 } else { 3072 });
            std::fs::write(dir.path().join("sig"), &raw).unwrap();
            let dgst = format!("-{}", hash.replace("sha2-", "sha"));
            let mut args = vec!["dgst", &dgst, "-verify", "pub.pem", "-signature", "sig"];
            if alg == "pss" {
                // Salt as long as the digest (-1), as the design says.
                args.extend([
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:-1",
                ]);
            }
            args.push("msg");
            let (ok, out) = openssl(dir.path(), &args);
            assert!(ok, "{kind} {alg} {hash}: {out}");
            assert!(verify(&k, &p, msg, &s.signature).unwrap());
            assert!(!verify(&k, &p, b"pay 1000 to alice", &s.signature).unwrap());
            assert!(!verify(&k, &p, msg, &flip_last(&s.signature, Alphabet::Standard)).unwrap());
            let other_pad = params(|q| {
                q.signature_algorithm = Some(if alg == "pss" { "pkcs1v15" } else { "pss" }.into());
                q.hash_algorithm = Some(hash.into());
            });
            assert!(!verify(&k, &other_pad, msg, &s.signature).unwrap());
            let pre = params(|q| {
                q.signature_algorithm = Some(alg.into());
                q.hash_algorithm = Some(hash.into());
                q.prehashed = Some(true);
            });
            let d = Hash::parse("h", hash).unwrap().digest(msg);
            let s2 = sign(&k, &pre, d.as_ref());
            assert!(
                verify(&k, &p, msg, &s2.signature).unwrap(),
                "prehashed {alg} {hash}"
            );
        }
        let e = k.sign(
            &params(|p| p.hash_algorithm = Some("sha2-224".into())),
            &SignItem {
                input: Some(b64(msg)),
                ..Default::default()
            },
        );
        assert!(e.is_err());
        assert!(
            k.sign(
                &params(|p| p.signature_algorithm = Some("raw".into())),
                &SignItem {
                    input: Some(b64(msg)),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}

#[test]
fn derived_ed25519_signs_per_context() {
    let k = derived("ed25519");
    let item = |ctx: Option<&[u8]>| SignItem {
        input: Some(b64(b"m")),
        context: ctx.map(b64),
        ..Default::default()
    };
    assert!(k.sign(&SignParams::default(), &item(None)).is_err());
    let s = k
        .sign(&SignParams::default(), &item(Some(b"alice")))
        .unwrap()
        .signature;
    let v = |ctx: &[u8]| {
        k.verify(
            &SignParams::default(),
            &VerifyItem {
                input: Some(b64(b"m")),
                signature: Some(s.clone()),
                context: Some(b64(ctx)),
                ..Default::default()
            },
        )
        .unwrap()
        .valid
    };
    assert!(v(b"alice"));
    assert!(!v(b"bob"));
    // The per-context key is the Ed25519 key whose seed is HKDF(version key, context).
    let seed = material::derive(&k.state().versions[&1].material, b"alice", 32).unwrap();
    let plain = with_material("ed25519", &seed);
    assert!(verify(&plain, &SignParams::default(), b"m", &s).unwrap());
}

#[test]
fn signing_policy_and_type_refusals() {
    let mut st = state("ed25519");
    st.rotate(NOW).unwrap();
    let k = TransitKey::load(st.clone()).unwrap();
    let s1 = k
        .sign(
            &SignParams {
                key_version: Some(1),
                ..Default::default()
            },
            &SignItem {
                input: Some(b64(b"m")),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(s1.signature.starts_with("vault:v1:"));
    assert_eq!(sign(&k, &SignParams::default(), b"m").key_version, 2);
    st.configure(&ConfigKey {
        min_decryption_version: Some(2),
        ..Default::default()
    })
    .unwrap();
    let k = k.reload(st).unwrap();
    assert_eq!(
        verify(&k, &SignParams::default(), b"m", &s1.signature)
            .unwrap_err()
            .to_string(),
        format!("signature: {TOO_OLD}")
    );
    let aes = key("aes256-gcm");
    let e = aes
        .sign(
            &SignParams::default(),
            &SignItem {
                input: Some(b64(b"m")),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "name: key type aes256-gcm does not support signing"
    );
    assert!(verify(&aes, &SignParams::default(), b"m", &s1.signature).is_err());
    assert!(
        k.sign(
            &params(|p| p.hash_algorithm = Some("md5".into())),
            &SignItem {
                input: Some(b64(b"m")),
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn exported_signing_keys_match_their_public_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, cmd) in [
        ("ecdsa-p256", "ec"),
        ("ecdsa-p384", "ec"),
        ("rsa-2048", "rsa"),
    ] {
        let mut s = state(kind);
        s.configure(&ConfigKey {
            exportable: Some(true),
            ..Default::default()
        })
        .unwrap();
        let k = TransitKey::load(s).unwrap();
        let x = export(&k, "signing-key", Some("1"), Dialect::Vault).unwrap();
        let pem = x["keys"]["1"].as_str().unwrap();
        let label = if cmd == "ec" {
            "EC PRIVATE KEY"
        } else {
            "RSA PRIVATE KEY"
        };
        assert!(
            pem.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{kind}: {pem:.40}"
        );
        std::fs::write(dir.path().join("key.pem"), pem).unwrap();
        let (ok, out) = openssl(dir.path(), &[cmd, "-in", "key.pem", "-pubout"]);
        assert!(ok, "{kind}: {out}");
        let public = k.state().versions[&1].public_key.clone().unwrap();
        assert!(
            out.contains(public.trim()),
            "{kind}: openssl's public key differs\n{out}\n{public}"
        );
    }
    let mut s = state("ed25519");
    s.configure(&ConfigKey {
        exportable: Some(true),
        ..Default::default()
    })
    .unwrap();
    let k = TransitKey::load(s).unwrap();
    let x = export(&k, "signing-key", None, Dialect::Vault).unwrap();
    let raw = unb64(x["keys"]["1"].as_str().unwrap());
    assert_eq!(raw.len(), 64);
    assert_eq!(raw[..32], k.state().versions[&1].material[..]);
    assert_eq!(
        raw[32..],
        unb64(k.state().versions[&1].public_key.as_deref().unwrap())[..]
    );
}
