//! The messages of an upgrade, JSON over `mc_rt::handover` (descriptors
//! attached to `Sockets` messages, in the order of its `sockets` list).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Bumped when a message changes meaning; a donor refuses another version.
pub(super) const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Msg {
    /// Successor → donor: opens the conversation.
    Hello { version: u32, pid: u32 },
    /// Donor → successor: no upgrade now (another runs, or another version).
    Refused { reason: String },
    /// Donor → successor: what the attached descriptors are; `last` ends the list.
    Sockets {
        sockets: Vec<SocketKind>,
        last: bool,
    },
    /// Successor → donor: release the stores.
    Release,
    /// Donor → successor: the stores are closed to the donor.
    Released,
    /// Successor → donor: accepting on every socket; stop accepting and drain.
    Takeover { accepting: usize },
    /// Donor → successor: stopped accepting; `handover_ms` from the signal
    /// (or the hello) to the takeover.
    Done { handover_ms: u64 },
    /// Either side: giving up, and why.
    Failed { reason: String },
}

/// One descriptor's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum SocketKind {
    /// One `SO_REUSEPORT` socket of an MC-Proxy listener (TLS or plain HTTP).
    Proxy {
        listener: String,
        address: SocketAddr,
    },
    DnsTcp {
        address: SocketAddr,
    },
    DnsUdp {
        address: SocketAddr,
    },
    /// The admin unix socket.
    Admin,
    /// The health and metrics listener.
    Metrics,
}

impl Msg {
    pub(super) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(super) fn decode(bytes: &[u8]) -> std::io::Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad upgrade message: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = Msg::Sockets {
            sockets: vec![
                SocketKind::Proxy {
                    listener: "web".into(),
                    address: "127.0.0.1:443".parse().expect("addr"),
                },
                SocketKind::Admin,
            ],
            last: true,
        };
        let back = Msg::decode(&m.encode()).expect("decode");
        assert!(matches!(back, Msg::Sockets { sockets, last: true } if sockets.len() == 2));
        assert!(Msg::decode(b"{\"op\":\"nope\"}").is_err());
        assert!(Msg::decode(b"\xff").is_err());
    }
}
