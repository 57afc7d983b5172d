//! `mcctl dns flush`: drop the forwarding cache.

use mc_proto::dns::v1 as pb;

use super::{Client, refused};
use crate::output::Out;

pub(super) async fn flush(c: &mut Client, out: Out, name: Option<String>) -> anyhow::Result<()> {
    let r = c
        .flush_cache(pb::FlushCacheRequest {
            name: name.unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    out.done(
        &serde_json::json!({ "removed": r.removed }),
        &format!("cache flushed ({} entries)", r.removed),
    )
}
