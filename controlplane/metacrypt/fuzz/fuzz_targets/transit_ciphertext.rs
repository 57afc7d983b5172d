//! The transit `vault:vN:` codec on arbitrary text: never panics; what it
//! accepts re-encodes to an equivalent value (same version, same body), and
//! a decrypt of arbitrary text with a real key never panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::transit::{CreateKey, DecryptItem, KeyState, TransitKey};
use mc_metacrypt::fuzzing::{TransitAlphabet, encode_transit, parse_transit};

fn key() -> &'static TransitKey {
    static KEY: OnceLock<TransitKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let req = CreateKey { kind: Some("xchacha20-poly1305".into()), ..Default::default() };
        TransitKey::load(KeyState::create("fuzz", &req, 0).expect("create")).expect("load")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for a in [TransitAlphabet::Standard, TransitAlphabet::UrlNoPad] {
        if let Ok(p) = parse_transit("ciphertext", text, a) {
            assert!(p.version >= 1);
            assert!(text.starts_with("vault:v"));
            let again = encode_transit(p.version, &p.body, a);
            assert_eq!(parse_transit("ciphertext", &again, a).expect("re-parse"), p);
        }
    }
    let item = DecryptItem { ciphertext: Some(text.to_owned()), ..Default::default() };
    // Only a forgery could decrypt; a success here would be a finding.
    assert!(key().decrypt(&item).is_err());
});
