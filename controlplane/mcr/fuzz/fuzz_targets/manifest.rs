//! Any bytes, as each manifest type and through media-type detection:
//! parse + validate never panics, and what parses names canonical digests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_mcr::registry::digest::Digest;
use mc_mcr::registry::manifest;

fuzz_target!(|data: &[u8]| {
    let _ = manifest::media_type(None, data);
    for t in [
        manifest::OCI_MANIFEST,
        manifest::OCI_INDEX,
        manifest::DOCKER_MANIFEST,
        manifest::DOCKER_LIST,
    ] {
        if let Ok(p) = manifest::parse(t, data) {
            for d in p.blobs.iter().chain(&p.manifests).chain(&p.subject) {
                assert_eq!(Digest::parse(&d.digest.to_string()), Ok(d.digest.clone()));
            }
        }
    }
});
