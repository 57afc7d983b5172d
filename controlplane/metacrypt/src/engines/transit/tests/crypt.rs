//! Encryption, derivation, datakeys, HMAC, random, hash, batches.

use super::*;
use crate::engines::transit::ciphertext::{Alphabet, encode, parse};

const AEADS: [&str; 2] = ["aes256-gcm", "xchacha20-poly1305"];

fn flip(ct: &str, at: usize) -> String {
    let p = parse("c", ct, Alphabet::Standard).unwrap();
    let mut body = p.body;
    let i = at % body.len();
    body[i] ^= 0x01;
    encode(p.version, &body, Alphabet::Standard)
}

#[test]
fn encrypt_decrypt_round_trips_with_the_documented_body() {
    for (kind, nonce) in [
        ("aes256-gcm", 12),
        ("xchacha20-poly1305", 24),
        ("aes256-gcm96", 12),
        ("chacha20-poly1305", 24),
    ] {
        let k = key(kind);
        for pt in [&b""[..], b"hello", &[0xa5; 1000]] {
            let out = enc(&k, pt);
            assert_eq!(out.key_version, 1);
            assert!(out.ciphertext.starts_with("vault:v1:"), "{kind}");
            let body = parse("c", &out.ciphertext, Alphabet::Standard)
                .unwrap()
                .body;
            assert_eq!(
                body.len(),
                nonce + pt.len() + 16,
                "{kind}: nonce ‖ ciphertext ‖ tag"
            );
            if pt.len() > 4 {
                assert!(
                    !body.windows(pt.len()).any(|w| w == pt),
                    "{kind}: plaintext visible"
                );
            }
            assert_eq!(dec(&k, &out.ciphertext).unwrap(), pt);
        }
        // Random nonces: the same plaintext twice gives two ciphertexts.
        assert_ne!(enc(&k, b"x").ciphertext, enc(&k, b"x").ciphertext);
    }
}

#[test]
fn tampering_fails_authentication() {
    for kind in AEADS {
        let k = key(kind);
        let other = key(kind);
        let ct = enc(&k, b"attack at dawn").ciphertext;
        let len = parse("c", &ct, Alphabet::Standard).unwrap().body.len();
        for at in [0, 5, len / 2, len - 17, len - 1] {
            let e = dec(&k, &flip(&ct, at)).unwrap_err();
            assert_eq!(
                e.to_string(),
                "ciphertext: cipher: message authentication failed",
                "{kind} byte {at}"
            );
        }
        assert!(
            dec(&other, &ct).is_err(),
            "{kind}: another key's ciphertext"
        );
        // Truncated: shorter than nonce + tag, and one byte short.
        let p = parse("c", &ct, Alphabet::Standard).unwrap();
        assert!(dec(&k, &encode(1, &p.body[..10], Alphabet::Standard)).is_err());
        assert!(
            dec(
                &k,
                &encode(1, &p.body[..p.body.len() - 1], Alphabet::Standard)
            )
            .is_err()
        );
    }
}

#[test]
fn associated_data_is_bound() {
    for kind in AEADS {
        let k = key(kind);
        let out = k
            .encrypt(&EncryptItem {
                plaintext: Some(b64(b"pt")),
                associated_data: Some(b64(b"row-7")),
                ..Default::default()
            })
            .unwrap();
        let open = |aad: Option<&[u8]>| {
            k.decrypt(&DecryptItem {
                ciphertext: Some(out.ciphertext.clone()),
                associated_data: aad.map(b64),
                ..Default::default()
            })
        };
        assert_eq!(open(Some(b"row-7")).unwrap().plaintext.to_vec(), b"pt");
        assert!(open(Some(b"row-8")).is_err(), "{kind}: wrong AAD");
        assert!(open(None).is_err(), "{kind}: missing AAD");
    }
}

#[test]
fn aes_gcm_known_answers_from_the_gcm_spec() {
    // McGrew & Viega test cases 13 and 14: K = 0^256, IV = 0^96.
    let k = with_material("aes256-gcm", &[0u8; 32]);
    let body = [vec![0u8; 12], hex("530f8afbc74536b9a963b4f1c4cb738b")].concat();
    assert_eq!(dec(&k, &encode(1, &body, Alphabet::Standard)).unwrap(), b"");
    let body = [
        vec![0u8; 12],
        hex("cea7403d4d606b6e074ec5d3baf39d18 d0d1c8a799996bf0265b98b5d48ab919"),
    ]
    .concat();
    assert_eq!(
        dec(&k, &encode(1, &body, Alphabet::Standard)).unwrap(),
        [0u8; 16]
    );
}

#[test]
fn xchacha20_poly1305_known_answer_from_the_draft() {
    // draft-irtf-cfrg-xchacha-03, A.3.1.
    let key: Vec<u8> = (0x80..=0x9f).collect();
    let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
    let aad = hex("50515253c0c1c2c3c4c5c6c7");
    let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let ct = hex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
         731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
         2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
         21f9664c97637da9768812f615c68b13b52e
         c0875924c1c7987947deafd8780acf49",
    );
    let k = with_material("xchacha20-poly1305", &key);
    let text = encode(1, &[nonce, ct].concat(), Alphabet::Standard);
    let out = k
        .decrypt(&DecryptItem {
            ciphertext: Some(text),
            associated_data: Some(b64(&aad)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(out.plaintext.as_slice(), pt);
}

#[test]
fn hkdf_matches_rfc5869_case_3() {
    // Zero-length salt and info, as Vault's hkdf_sha256 with an empty context.
    let okm = material::derive(&[0x0b; 22], b"", 42).unwrap();
    assert_eq!(
        okm.as_slice(),
        hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
}

#[test]
fn derived_keys_need_the_same_context() {
    for kind in AEADS {
        let k = derived(kind);
        let item = |ctx: Option<&[u8]>| EncryptItem {
            plaintext: Some(b64(b"secret")),
            context: ctx.map(b64),
            ..Default::default()
        };
        let e = k.encrypt(&item(None)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("context: missing 'context' for key derivation"),
            "{e}"
        );
        let ct = k.encrypt(&item(Some(b"tenant-a"))).unwrap().ciphertext;
        let open = |ctx: Option<&[u8]>| {
            k.decrypt(&DecryptItem {
                ciphertext: Some(ct.clone()),
                context: ctx.map(b64),
                ..Default::default()
            })
        };
        assert_eq!(
            open(Some(b"tenant-a")).unwrap().plaintext.to_vec(),
            b"secret"
        );
        assert!(open(Some(b"tenant-b")).is_err(), "{kind}: wrong context");
        assert!(open(None).is_err(), "{kind}: no context");
        // The per-call key is HKDF-SHA256(version key, context): a plain key
        // holding that derived key opens the ciphertext.
        let dk = material::derive(&k.state().versions[&1].material, b"tenant-a", 32).unwrap();
        assert_eq!(
            dec(&with_material(kind, &dk), &ct).unwrap(),
            b"secret",
            "{kind}"
        );
    }
}

#[test]
fn wrong_key_type_and_bad_fields_are_refused() {
    let ed = key("ed25519");
    let e = ed
        .encrypt(&EncryptItem {
            plaintext: Some(b64(b"x")),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "name: key type ed25519 does not support encryption"
    );
    assert!(dec(&key("hmac-sha256"), "vault:v1:AAAA").is_err());
    let k = key("aes256-gcm");
    let e = k
        .encrypt(&EncryptItem {
            plaintext: Some(Input::text("%%")),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "plaintext: not base64");
    assert_eq!(
        k.encrypt(&EncryptItem::default()).unwrap_err().to_string(),
        "plaintext: missing"
    );
    let e = k
        .encrypt(&EncryptItem {
            plaintext: Some(b64(b"x")),
            nonce: Some(b64(&[1; 12])),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().starts_with("nonce:"));
    for (text, want) in [
        ("nope", "invalid ciphertext: no prefix"),
        ("vault:v2:AAAA", "invalid ciphertext: version is too new"),
        (
            "vault:v1:***",
            "invalid ciphertext: could not decode base64",
        ),
    ] {
        assert_eq!(
            dec(&k, text).unwrap_err().to_string(),
            format!("ciphertext: {want}")
        );
    }
}

#[test]
fn versions_minimums_and_rewrap() {
    let mut s = state("aes256-gcm");
    let k1 = TransitKey::load(s.clone()).unwrap();
    let ct1 = enc(&k1, b"one").ciphertext;
    s.rotate(NOW + 1).unwrap();
    s.rotate(NOW + 2).unwrap();
    let k = k1.reload(s.clone()).unwrap();
    assert_eq!(enc(&k, b"x").key_version, 3);
    let explicit = k
        .encrypt(&EncryptItem {
            plaintext: Some(b64(b"x")),
            key_version: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert!(explicit.ciphertext.starts_with("vault:v2:"));
    let re = k
        .rewrap(&RewrapItem {
            ciphertext: Some(ct1.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(re.key_version, 3);
    assert!(re.ciphertext.starts_with("vault:v3:"));
    assert_eq!(dec(&k, &re.ciphertext).unwrap(), b"one");

    s.configure(&ConfigKey {
        min_decryption_version: Some(2),
        min_encryption_version: Some(3),
        ..Default::default()
    })
    .unwrap();
    let k = k.reload(s.clone()).unwrap();
    let too_old = format!("ciphertext: {TOO_OLD}");
    assert_eq!(dec(&k, &ct1).unwrap_err().to_string(), too_old);
    assert_eq!(
        k.rewrap(&RewrapItem {
            ciphertext: Some(ct1.clone()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string(),
        too_old
    );
    let e = k
        .encrypt(&EncryptItem {
            plaintext: Some(b64(b"x")),
            key_version: Some(2),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "key_version: requested version is less than the minimum encryption key version"
    );
    let e = k
        .encrypt(&EncryptItem {
            plaintext: Some(b64(b"x")),
            key_version: Some(4),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("higher than the latest"));
    assert_eq!(dec(&k, &explicit.ciphertext).unwrap(), b"x");

    // Lowering the minimum again restores access (nothing was trimmed).
    s.configure(&ConfigKey {
        min_decryption_version: Some(1),
        min_encryption_version: Some(0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(dec(&k.reload(s.clone()).unwrap(), &ct1).unwrap(), b"one");

    // After a trim the versions are gone.
    s.configure(&ConfigKey {
        min_decryption_version: Some(3),
        min_encryption_version: Some(3),
        ..Default::default()
    })
    .unwrap();
    s.trim(Some(3)).unwrap();
    let k = k.reload(s.clone()).unwrap();
    assert_eq!(k.cache.len(), 1);
    assert_eq!(
        dec(&k, &explicit.ciphertext).unwrap_err().to_string(),
        too_old
    );
}

#[test]
fn datakeys_in_three_sizes_decrypt_to_their_plaintext() {
    for kind in AEADS {
        let k = key(kind);
        for bits in [128, 256, 512] {
            let out = k
                .datakey(
                    &DatakeyRequest {
                        bits: Some(bits),
                        ..Default::default()
                    },
                    true,
                )
                .unwrap();
            let pt = out.plaintext.clone().unwrap();
            assert_eq!(pt.len(), bits as usize / 8);
            assert_eq!(dec(&k, &out.ciphertext).unwrap(), pt.as_slice());
            let j = serde_json::to_value(&out).unwrap();
            assert_eq!(unb64(j["plaintext"].as_str().unwrap()), pt.as_slice());
        }
        let wrapped = k.datakey(&DatakeyRequest::default(), false).unwrap();
        assert!(wrapped.plaintext.is_none());
        assert!(
            serde_json::to_value(&wrapped)
                .unwrap()
                .get("plaintext")
                .is_none()
        );
        assert_eq!(dec(&k, &wrapped.ciphertext).unwrap().len(), 32);
        assert!(
            k.datakey(
                &DatakeyRequest {
                    bits: Some(64),
                    ..Default::default()
                },
                true
            )
            .is_err()
        );
    }
    assert!(
        key("ed25519")
            .datakey(&DatakeyRequest::default(), true)
            .is_err()
    );
}

#[test]
fn hmac_matches_rfc4231_and_verifies() {
    // RFC 4231 test case 2 on an HMAC key whose material is "Jefe".
    let k = with_material("hmac-sha256", b"Jefe");
    let input = b"what do ya want for nothing?";
    let out = k
        .hmac(
            &HmacParams::default(),
            &HmacItem {
                input: Some(b64(input)),
                ..Default::default()
            },
        )
        .unwrap();
    let want = hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_eq!(out.hmac, encode(1, &want, Alphabet::Standard));
    let p512 = HmacParams {
        algorithm: Some("sha2-512".into()),
        ..Default::default()
    };
    let out512 = k
        .hmac(
            &p512,
            &HmacItem {
                input: Some(b64(input)),
                ..Default::default()
            },
        )
        .unwrap();
    let want512 = hex(
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    );
    assert_eq!(out512.hmac, encode(1, &want512, Alphabet::Standard));

    let verify = |params: &SignParams, input: &[u8], h: &str| {
        k.verify(
            params,
            &VerifyItem {
                input: Some(b64(input)),
                hmac: Some(h.into()),
                ..Default::default()
            },
        )
    };
    let sp = SignParams::default();
    assert!(verify(&sp, input, &out.hmac).unwrap().valid);
    assert!(!verify(&sp, b"other", &out.hmac).unwrap().valid);
    let sp512 = SignParams {
        hash_algorithm: Some("sha2-512".into()),
        ..Default::default()
    };
    assert!(verify(&sp512, input, &out512.hmac).unwrap().valid);
    assert!(
        !verify(&sp, input, &out512.hmac).unwrap().valid,
        "algorithm mismatch"
    );

    // Every key type HMACs with its version's own 32-byte key.
    for kind in ["aes256-gcm", "ed25519", "ecdsa-p256"] {
        let k = key(kind);
        let h = k
            .hmac(
                &HmacParams::default(),
                &HmacItem {
                    input: Some(b64(b"m")),
                    ..Default::default()
                },
            )
            .unwrap()
            .hmac;
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &k.state().versions[&1].hmac_key,
            ),
            b"m",
        );
        assert_eq!(h, encode(1, tag.as_ref(), Alphabet::Standard), "{kind}");
        assert_eq!(k.state().versions[&1].hmac_key.len(), 32);
    }
    let both = VerifyItem {
        input: Some(b64(b"m")),
        hmac: Some(out.hmac.clone()),
        signature: Some(out.hmac),
        ..Default::default()
    };
    assert!(k.verify(&sp, &both).is_err());
}

#[test]
fn hash_and_random() {
    let h = hash(&HashRequest {
        input: Some(b64(b"abc")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        h.sum,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let h = hash(&HashRequest {
        input: Some(b64(b"abc")),
        algorithm: Some("sha2-512".into()),
        format: Some("base64".into()),
    })
    .unwrap();
    assert_eq!(unb64(&h.sum)[..4], hex("ddaf35a1"));
    assert!(
        hash(&HashRequest {
            input: Some(b64(b"abc")),
            algorithm: Some("md5".into()),
            ..Default::default()
        })
        .is_err()
    );
    let r = random_bytes(&RandomRequest::default()).unwrap();
    assert_eq!(unb64(&r.random_bytes).len(), 32);
    let r = random_bytes(&RandomRequest {
        bytes: Some(7),
        format: Some("hex".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(r.random_bytes.len(), 14);
    assert!(
        random_bytes(&RandomRequest {
            bytes: Some(0),
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        random_bytes(&RandomRequest {
            bytes: Some(ops::MAX_RANDOM_BYTES + 1),
            ..Default::default()
        })
        .is_err()
    );
    let url = |t: &str| RandomRequest {
        url_bytes: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(
        unb64(&random_bytes(&url("5")).unwrap().random_bytes).len(),
        5
    );
    assert_eq!(
        random_bytes(&url("x")).unwrap_err().to_string(),
        "bytes: a positive integer"
    );
    assert!(random_bytes(&url("0")).is_err());
    assert!(
        random_bytes(&RandomRequest {
            format: Some("base32".into()),
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn batch_encrypt_then_decrypt_in_order_with_per_item_errors() {
    let k = key("aes256-gcm");
    let items: Vec<EncryptItem> = serde_json::from_value(serde_json::json!([
        {"plaintext": STANDARD.encode("a"), "reference": "first"},
        {"plaintext": "not base64!", "reference": "second"},
        {"plaintext": STANDARD.encode("c")},
    ]))
    .unwrap();
    let out = BatchResults::run(&items, |i| i.reference.clone(), |i| k.encrypt(i)).unwrap();
    assert_eq!(out.status(None), 400);
    assert_eq!(out.status(Some(207)), 207);
    let j = serde_json::to_value(&out).unwrap();
    let r = j["batch_results"].as_array().unwrap();
    assert_eq!(r[0]["reference"], "first");
    assert_eq!(
        r[1],
        serde_json::json!({"error": "plaintext: not base64", "reference": "second"})
    );
    assert_eq!(r[2]["reference"], "");
    let dec_items: Vec<DecryptItem> = [&r[0], &r[2]]
        .iter()
        .map(|x| DecryptItem {
            ciphertext: x["ciphertext"].as_str().map(String::from),
            reference: Some("d".into()),
            ..Default::default()
        })
        .collect();
    let back = BatchResults::run(&dec_items, |i| i.reference.clone(), |i| k.decrypt(i)).unwrap();
    assert_eq!(back.status(None), 200);
    let j = serde_json::to_value(&back).unwrap();
    assert_eq!(j["batch_results"][0]["plaintext"], STANDARD.encode("a"));
    assert_eq!(j["batch_results"][1]["plaintext"], STANDARD.encode("c"));
}

#[test]
fn aes_encryptions_are_counted_and_survive_reload() {
    let k = key("aes256-gcm");
    for _ in 0..3 {
        enc(&k, b"x");
    }
    k.datakey(&DatakeyRequest::default(), false).unwrap();
    assert_eq!(k.latest_encryptions(), 4);
    let mut s = k.state().clone();
    s.configure(&ConfigKey {
        deletion_allowed: Some(true),
        ..Default::default()
    })
    .unwrap();
    let k2 = k.reload(s.clone()).unwrap();
    assert_eq!(k2.latest_encryptions(), 4, "the cached version is reused");
    // Flushing moves the count into the stored state exactly once.
    let flushed = k2.take_counts().unwrap();
    assert_eq!(flushed.versions[&1].encryptions, 4);
    assert!(k2.take_counts().is_none());
    let k2 = k2.reload(flushed.clone()).unwrap();
    assert_eq!(k2.latest_encryptions(), 4);
    enc(&k2, b"y");
    assert_eq!(k2.latest_encryptions(), 5);
    let json = serde_json::to_string(&k2.take_counts().unwrap()).unwrap();
    let mut s: KeyState = serde_json::from_str(&json).unwrap();
    assert_eq!(s.versions[&1].encryptions, 5);
    s.rotate(NOW).unwrap();
    let k3 = k2.reload(s.clone()).unwrap();
    assert_eq!(k3.latest_encryptions(), 0);
    assert_eq!(k3.encryptions(1), 5);
    assert!(!k3.rotation_due(NOW));
    s.versions.get_mut(&2).unwrap().encryptions =
        crate::engines::transit::keys::AES_GCM_ROTATE_AFTER;
    assert!(k3.reload(s).unwrap().rotation_due(NOW));
    assert_eq!(key("xchacha20-poly1305").latest_encryptions(), 0);
}
