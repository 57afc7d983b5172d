use std::path::Path;

use proptest::prelude::*;

use super::*;

const LIMITS: Limits = Limits {
    max_entries: 1000,
    max_bytes: 1 << 20,
};

/// One raw entry: its name and link name are written into the header as
/// bytes, unchecked, as a hostile peer would.
#[derive(Debug, Clone)]
struct Raw {
    name: String,
    kind: EntryType,
    link: String,
    data: Vec<u8>,
}

fn file(name: &str, data: &str) -> Raw {
    Raw {
        name: name.into(),
        kind: EntryType::Regular,
        link: String::new(),
        data: data.as_bytes().to_vec(),
    }
}

fn link(name: &str, kind: EntryType, target: &str) -> Raw {
    Raw {
        name: name.into(),
        kind,
        link: target.into(),
        data: Vec::new(),
    }
}

fn dir(name: &str) -> Raw {
    link(name, EntryType::Directory, "")
}

fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_old();
        let name = e.name.as_bytes();
        let link = e.link.as_bytes();
        let old = h.as_old_mut();
        old.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        old.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h.set_entry_type(e.kind);
        h.set_mode(0o640);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data.as_slice()).expect("append");
    }
    b.into_inner().expect("finish")
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(dir).expect("inside").display().to_string());
            if fs::symlink_metadata(&p).expect("meta").is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A service root with an existing `svc` tree.
fn root() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(t.path().join("svc/data")).expect("mkdir");
    fs::write(t.path().join("svc/data/old"), "old").expect("write");
    t
}

fn refused_untouched(entries: &[Raw], why: &str) {
    let t = root();
    let before = tree(t.path());
    let r = install(tar_of(entries).as_slice(), t.path(), "svc", LIMITS);
    assert!(
        matches!(r, Err(ArchiveError::Refused { .. })),
        "{why}: {r:?}"
    );
    assert_eq!(tree(t.path()), before, "{why}: something was written");
    assert_eq!(
        fs::read_to_string(t.path().join("svc/data/old")).expect("old"),
        "old"
    );
    // Nothing beside the root either.
    let parent = t.path().parent().expect("parent");
    assert!(!parent.join("evil").exists(), "{why}");
}

#[test]
fn a_packed_tree_installs_back_identically() {
    let src = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(src.path().join("data/sub")).expect("mkdir");
    fs::write(src.path().join("data/count"), "41").expect("write");
    fs::write(src.path().join("data/sub/x"), "x").expect("write");
    std::os::unix::fs::symlink("sub/x", src.path().join("data/latest")).expect("symlink");
    let mut buf = Vec::new();
    pack(src.path(), &mut buf).expect("pack");
    let t = root();
    let done = install(buf.as_slice(), t.path(), "svc", LIMITS).expect("install");
    assert_eq!(done.bytes, 3);
    assert_eq!(
        tree(&t.path().join("svc")),
        [
            "data",
            "data/count",
            "data/latest",
            "data/sub",
            "data/sub/x"
        ]
    );
    assert_eq!(
        fs::read_to_string(t.path().join("svc/data/latest")).expect("via link"),
        "x"
    );
    // The old tree is gone, and no staging dir is left.
    assert_eq!(
        tree(t.path()).iter().filter(|p| p.starts_with('.')).count(),
        0
    );
}

#[test]
fn hostile_archives_are_refused_and_write_nothing() {
    let ok = file("data/ok", "fine");
    let cases: Vec<(&str, Vec<Raw>)> = vec![
        ("dot-dot", vec![ok.clone(), file("../evil", "x")]),
        ("dot-dot inside", vec![file("data/../../evil", "x")]),
        ("absolute", vec![file("/tmp/evil", "x")]),
        (
            "device node",
            vec![link("data/dev", EntryType::Char, ""), ok.clone()],
        ),
        ("block device", vec![link("data/blk", EntryType::Block, "")]),
        ("fifo", vec![link("data/fifo", EntryType::Fifo, "")]),
        (
            "escaping symlink",
            vec![link("data/out", EntryType::Symlink, "../../evil")],
        ),
        (
            "absolute symlink",
            vec![link("data/etc", EntryType::Symlink, "/etc")],
        ),
        (
            "escape through another symlink",
            vec![
                dir("d1"),
                link("d1/up", EntryType::Symlink, ".."),
                link("d1/out", EntryType::Symlink, "up/../evil"),
            ],
        ),
        (
            "symlink loop",
            vec![
                link("a", EntryType::Symlink, "b"),
                link("b", EntryType::Symlink, "a"),
            ],
        ),
        (
            "write through a symlink",
            vec![
                link("data2", EntryType::Symlink, "data"),
                file("data2/x", "x"),
            ],
        ),
        (
            "file over a symlink",
            vec![link("f", EntryType::Symlink, "g"), file("f", "x")],
        ),
        (
            "hard link out of the tree",
            vec![link("data/pw", EntryType::Link, "../../etc/passwd")],
        ),
        (
            "hard link to an absolute path",
            vec![link("data/pw", EntryType::Link, "/etc/passwd")],
        ),
        (
            "hard link to a symlink",
            vec![
                link("s", EntryType::Symlink, "data"),
                link("h", EntryType::Link, "s"),
            ],
        ),
        ("duplicate file", vec![file("x", "1"), file("x", "2")]),
        ("root as a file", vec![file(".", "x")]),
    ];
    for (why, entries) in cases {
        refused_untouched(&entries, why);
    }
}

#[test]
fn limits_on_entries_and_bytes_are_kept() {
    let t = root();
    let many: Vec<Raw> = (0..5).map(|i| file(&format!("f{i}"), "x")).collect();
    let tight = Limits {
        max_entries: 4,
        max_bytes: 100,
    };
    let r = install(tar_of(&many).as_slice(), t.path(), "svc", tight);
    assert!(matches!(r, Err(ArchiveError::Refused { .. })), "{r:?}");
    let big = vec![file("big", &"y".repeat(101))];
    let r = install(tar_of(&big).as_slice(), t.path(), "svc", tight);
    assert!(matches!(r, Err(ArchiveError::Refused { .. })), "{r:?}");
    assert_eq!(tree(&t.path().join("svc")), ["data", "data/old"]);
}

#[test]
fn links_inside_the_tree_are_kept() {
    let t = root();
    let entries = vec![
        dir("data"),
        file("data/a", "A"),
        link("data/hard", EntryType::Link, "data/a"),
        link("data/soft", EntryType::Symlink, "a"),
        link("up", EntryType::Symlink, "data/../data/a"),
    ];
    install(tar_of(&entries).as_slice(), t.path(), "svc", LIMITS).expect("install");
    let svc = t.path().join("svc");
    assert_eq!(
        fs::read_to_string(svc.join("data/hard")).expect("hard"),
        "A"
    );
    assert_eq!(fs::read_to_string(svc.join("up")).expect("up"), "A");
    let mode = fs::metadata(svc.join("data/a"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let t = root();
    let r = install(&b"not a tar at all, just text"[..], t.path(), "svc", LIMITS);
    assert!(r.is_err());
    assert_eq!(tree(&t.path().join("svc")), ["data", "data/old"]);
}

fn arb_raw() -> impl Strategy<Value = Raw> {
    let part = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("".to_owned()),
    ];
    let path = prop::collection::vec(part, 1..4).prop_map(|v| v.join("/"));
    let abs = prop_oneof![Just(String::new()), Just("/".to_owned())];
    let kind = prop_oneof![
        Just(EntryType::Regular),
        Just(EntryType::Directory),
        Just(EntryType::Symlink),
        Just(EntryType::Link),
        Just(EntryType::Fifo),
    ];
    (abs.clone(), path.clone(), kind, abs, path).prop_map(|(a, p, kind, la, l)| Raw {
        name: format!("{a}{p}"),
        kind,
        link: format!("{la}{l}"),
        data: if kind == EntryType::Regular {
            b"z".to_vec()
        } else {
            Vec::new()
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the archive, nothing lands outside the service's tree; a
    /// refused one leaves it as it was; an accepted one has no symlink that
    /// leaves it.
    #[test]
    fn any_archive_stays_confined(entries in prop::collection::vec(arb_raw(), 0..8)) {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("root");
        fs::create_dir_all(root.join("svc")).expect("mkdir");
        fs::write(root.join("svc/old"), "old").expect("write");
        let r = install(tar_of(&entries).as_slice(), &root, "svc", LIMITS);
        prop_assert_eq!(tree(base.path()).iter().filter(|p| !p.starts_with("root")).count(), 0);
        let top: Vec<String> = tree(&root).into_iter().filter(|p| !p.contains('/')).collect();
        prop_assert_eq!(top, vec!["svc".to_owned()]);
        match r {
            Ok(_) => {
                prop_assert_eq!(escaping_symlink(&root.join("svc")).expect("walk"), None);
            }
            Err(_) => {
                prop_assert_eq!(tree(&root.join("svc")), vec!["old".to_owned()]);
            }
        }
    }
}
