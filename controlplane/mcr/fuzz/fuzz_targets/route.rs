//! Any `/v2/` path: parses or is refused, never panics; a parsed name is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_mcr::model::RepoName;
use mc_mcr::registry::route::{Route, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let name = match parse(s) {
        Ok(Route::Manifest(n, _) | Route::Blob(n, _) | Route::UploadStart(n))
        | Ok(Route::Upload(n, _) | Route::Tags(n) | Route::Referrers(n, _)) => n,
        _ => return,
    };
    assert!(RepoName::parse(name.as_str()).is_some());
});
