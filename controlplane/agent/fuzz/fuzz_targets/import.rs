//! ImportServiceData's unpacking: whatever the bytes, nothing is written
//! outside the service's tree, a refused archive leaves the old tree as it
//! was, and an accepted one has no symlink leaving it.
#![no_main]

use std::fs;

use libfuzzer_sys::fuzz_target;
use mc_agent::archive::{Limits, escaping_symlink, install};

fuzz_target!(|data: &[u8]| {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("root");
    fs::create_dir_all(root.join("svc")).expect("mkdir");
    fs::write(root.join("svc/old"), "old").expect("write");
    let limits = Limits {
        max_entries: 64,
        max_bytes: 1 << 16,
    };
    let r = install(data, &root, "svc", limits);
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(base.path()), ["root"]);
    assert_eq!(names(&root), ["svc"]);
    match r {
        Ok(_) => assert_eq!(escaping_symlink(&root.join("svc")).expect("walk"), None),
        Err(_) => assert_eq!(fs::read_to_string(root.join("svc/old")).expect("old"), "old"),
    }
});
