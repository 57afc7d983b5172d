//! The node's MC-Proxy routes, through the data plane's admin socket
//! (`mc.proxy.v1`, the client `mcctl proxy routes` uses).
//!
//! A switch changes only the backends of the hostname's existing routes
//! (on every listener that has one), keeping their listener, mode, L7
//! options and timeouts; a hostname with no route gets a new one on the
//! only listener (an L7 route uses the certificate named like the
//! hostname). The previous routes are returned so a failed cutover can put
//! them back.

use std::path::{Path, PathBuf};

use mc_proto::proxy::v1 as pb;
use pb::proxy_admin_client::ProxyAdminClient;
use tonic::transport::Channel;

use crate::model::Mode;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RouteError {
    #[error("cannot reach the data plane at {path}: {message}")]
    Connect { path: PathBuf, message: String },
    #[error("data plane refused {what} for {hostname}: {message}")]
    Refused {
        what: &'static str,
        hostname: String,
        message: String,
    },
}

#[derive(Clone)]
pub(crate) struct Routes {
    socket: Option<PathBuf>,
}

/// What a hostname had before a switch: its routes, or none.
pub(crate) type Previous = (String, Vec<pb::Route>);

impl Routes {
    pub(crate) fn new(socket: Option<PathBuf>) -> Self {
        Self { socket }
    }

    pub(crate) fn configured(&self) -> bool {
        self.socket.is_some()
    }

    async fn client(&self, path: &Path) -> Result<ProxyAdminClient<Channel>, RouteError> {
        let channel = mc_shell::admin::channel(path)
            .await
            .map_err(|e| RouteError::Connect {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Ok(ProxyAdminClient::new(channel).max_decoding_message_size(64 << 20))
    }

    async fn existing(
        c: &mut ProxyAdminClient<Channel>,
        hostname: &str,
    ) -> Result<Vec<pb::Route>, RouteError> {
        let all = c
            .list_routes(pb::ListRoutesRequest::default())
            .await
            .map_err(|s| refused("ListRoutes", hostname, &s))?
            .into_inner();
        Ok(all
            .routes
            .into_iter()
            .filter(|r| r.hostname == hostname)
            .collect())
    }

    /// Points `hostname` at `backend`; returns what it had before. `Ok(None)`
    /// when no data plane is configured.
    pub(crate) async fn switch(
        &self,
        hostname: &str,
        mode: Mode,
        backend: &str,
    ) -> Result<Option<Previous>, RouteError> {
        let Some(path) = &self.socket else {
            return Ok(None);
        };
        let mut c = self.client(path).await?;
        let before = Self::existing(&mut c, hostname).await?;
        let targets = if before.is_empty() {
            vec![new_route(hostname, mode)]
        } else {
            before.clone()
        };
        for mut r in targets {
            r.backends = vec![backend.to_owned()];
            c.upsert_route(pb::UpsertRouteRequest {
                route: Some(r),
                create_only: false,
            })
            .await
            .map_err(|s| refused("UpsertRoute", hostname, &s))?;
        }
        Ok(Some((hostname.to_owned(), before)))
    }

    /// Puts back what [`Self::switch`] replaced (best effort per route).
    pub(crate) async fn restore(&self, previous: &[Previous]) -> Result<(), RouteError> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let mut c = self.client(path).await?;
        for (hostname, before) in previous {
            if before.is_empty() {
                self.remove_with(&mut c, hostname, None).await?;
            }
            for r in before {
                c.upsert_route(pb::UpsertRouteRequest {
                    route: Some(r.clone()),
                    create_only: false,
                })
                .await
                .map_err(|s| refused("UpsertRoute", hostname, &s))?;
            }
        }
        Ok(())
    }

    /// Removes the routes of `hostname` (with `ours`, only those whose
    /// backends are all this node's: a route another node took over in a
    /// migration is left to it). `false` when none was removed.
    pub(crate) async fn remove(
        &self,
        hostname: &str,
        ours: Option<&[String]>,
    ) -> Result<bool, RouteError> {
        let Some(path) = &self.socket else {
            return Ok(false);
        };
        let mut c = self.client(path).await?;
        self.remove_with(&mut c, hostname, ours).await
    }

    async fn remove_with(
        &self,
        c: &mut ProxyAdminClient<Channel>,
        hostname: &str,
        ours: Option<&[String]>,
    ) -> Result<bool, RouteError> {
        let mut any = false;
        let mine = |r: &pb::Route| ours.is_none_or(|o| r.backends.iter().all(|b| o.contains(b)));
        for r in Self::existing(c, hostname).await?.into_iter().filter(mine) {
            any |= c
                .remove_route(pb::RemoveRouteRequest {
                    listener: r.listener,
                    hostname: hostname.to_owned(),
                })
                .await
                .map_err(|s| refused("RemoveRoute", hostname, &s))?
                .into_inner()
                .removed;
        }
        Ok(any)
    }
}

fn refused(what: &'static str, hostname: &str, s: &tonic::Status) -> RouteError {
    RouteError::Refused {
        what,
        hostname: hostname.to_owned(),
        message: s.message().to_owned(),
    }
}

fn new_route(hostname: &str, mode: Mode) -> pb::Route {
    let (mode, l7) = match mode {
        Mode::L4 => (pb::RouteMode::L4, None),
        Mode::L7 => (
            pb::RouteMode::L7,
            Some(pb::L7Options {
                certificate: hostname.to_owned(),
                ..pb::L7Options::default()
            }),
        ),
    };
    pb::Route {
        hostname: hostname.to_owned(),
        mode: mode.into(),
        l7,
        ..pb::Route::default()
    }
}
