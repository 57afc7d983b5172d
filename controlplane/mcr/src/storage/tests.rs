//! The blob store contract, run on the filesystem backend here and on an
//! S3 server (moto) by the integration test `registry_on_s3_…`.

use std::io::Read;

use futures_util::StreamExt;

use super::*;
use crate::registry::digest::Algorithm;

/// Puts `bytes` through a staged session file as a new object; its key.
fn put(s: &Storage, uuid: &str, bytes: &[u8]) -> String {
    s.create_session(uuid, b"{}").expect("session");
    let data = s.session_data(uuid).expect("data");
    std::fs::write(&data, bytes).expect("write");
    let key = Storage::object_key(&Digest::of(Algorithm::Sha256, bytes), "0123abcd");
    assert_eq!(s.object_len(&key).expect("len"), None, "not visible before");
    s.put_from_file(&data, &key).expect("put");
    assert!(!data.exists(), "the staged file is consumed");
    s.remove_session(uuid).expect("remove");
    key
}

async fn range(s: &Storage, key: &str, first: u64, len: u64) -> Vec<u8> {
    let mut body = s.read_range(key, first, len).await.expect("range");
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

/// What every backend must do.
pub(crate) async fn contract(s: Storage) {
    let key = put(&s, "0123-abcd", b"hello world");
    assert!(key.starts_with("sha256/b9/b94d27b9"), "{key}");
    assert_eq!(s.object_len(&key).expect("len"), Some(11));
    assert_eq!(range(&s, &key, 0, 11).await, b"hello world");
    assert_eq!(range(&s, &key, 6, 5).await, b"world");
    let mut whole = String::new();
    let mut r = s.open_object(&key).expect("open");
    r.read_to_string(&mut whole).expect("read");
    assert_eq!(whole, "hello world");
    let listed = s.list_objects().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].0.as_str(), listed[0].2), (key.as_str(), 11));
    assert!(
        s.read_range("sha256/00/00.1", 0, 1).await.is_err(),
        "missing"
    );
    assert!(s.open_object("../../etc/passwd").is_err());
    s.delete_object(&key).expect("delete");
    assert_eq!(s.object_len(&key).expect("len"), None);
    s.delete_object(&key)
        .expect("deleting a missing object succeeds");
    assert!(s.list_objects().expect("list").is_empty());
    assert!(s.session_meta("../x").is_err());
}

#[tokio::test]
async fn the_filesystem_backend_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(Storage::open_fs(dir.path()).expect("open")).await;
}
