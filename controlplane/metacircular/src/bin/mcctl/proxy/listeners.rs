//! `mcctl proxy listeners …`.

use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum ListenerCommand {
    List,
}

#[derive(Serialize)]
struct ListenerView {
    name: String,
    address: String,
    proxy_protocol: String,
    trusted_proxies: Vec<String>,
    default_route: String,
    origin: String,
}

const TABLE: Table = Table(&[
    Col::left("NAME", 16),
    Col::left("ADDRESS", 24),
    Col::left("PROXY", 6),
    Col::left("ORIGIN", 8),
    Col::left("TRUSTED PROXIES", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: ListenerCommand) -> anyhow::Result<()> {
    match cmd {
        ListenerCommand::List => list(c, out).await,
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let ls: Vec<ListenerView> = c
        .list_listeners(pb::ListListenersRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .listeners
        .into_iter()
        .map(|l| ListenerView {
            name: l.name,
            address: l.address,
            proxy_protocol: name_or::<pb::ProxyProtocol>(l.proxy_protocol, "off"),
            trusted_proxies: l.trusted_proxies,
            default_route: l.default_route,
            origin: name_or::<pb::Origin>(l.origin, "?"),
        })
        .collect();
    out.show(&ls, || {
        TABLE.print(ls.iter().map(|l| {
            row![
                l.name,
                l.address,
                l.proxy_protocol,
                l.origin,
                l.trusted_proxies.join(",")
            ]
        }));
    })
}
