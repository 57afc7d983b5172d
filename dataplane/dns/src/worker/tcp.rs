//! The TCP loop: one task per connection, queries answered in order
//! (pipelining), an idle timeout between queries, a process-wide connection
//! limit. The accept future survives notifications; stopping cancels it and
//! awaits the result.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use monoio::net::{TcpListener, TcpStream};

use super::Ctx;
use super::io::{read_frame, write_frame};
use super::message::Transport;
use super::server::{self, Action};
use crate::stats::global;

pub(super) async fn accept_loop(ctx: Rc<Ctx>, listener: TcpListener) {
    let mut stop = ctx.p.stop.subscribe();
    // Never dropped: a dropped io_uring accept could lose a connection the
    // kernel already handed over. Stopping cancels it and awaits the result.
    let canceller = monoio::io::Canceller::new();
    let mut accept = Box::pin(listener.cancelable_accept(canceller.handle()));
    loop {
        monoio::select! {
            accepted = &mut accept => {
                match accepted {
                    Ok((stream, peer)) => admit(&ctx, stream, peer),
                    Err(e) => {
                        tracing::warn!(worker = ctx.id, error = %e, "dns: accept failed");
                        monoio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                accept = Box::pin(listener.cancelable_accept(canceller.handle()));
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    let _ = canceller.cancel();
    if let Ok((stream, peer)) = accept.await {
        admit(&ctx, stream, peer);
    }
}

/// Serves an accepted connection, or closes it at the connection cap.
fn admit(ctx: &Rc<Ctx>, stream: TcpStream, peer: SocketAddr) {
    let p = &ctx.p;
    let max = p.settings.tcp_max_connections;
    if p.tcp_active.fetch_add(1, Ordering::Relaxed) >= max {
        p.tcp_active.fetch_sub(1, Ordering::Relaxed);
        p.stats.global.add(ctx.id, global::TCP_REFUSED, 1);
        drop(stream);
    } else {
        monoio::spawn(connection(ctx.clone(), stream, peer));
    }
}

async fn connection(ctx: Rc<Ctx>, mut stream: TcpStream, peer: SocketAddr) {
    let p = ctx.p.clone();
    p.stats.global.add(ctx.id, global::TCP_ACTIVE, 1);
    ctx.tcp_open.set(ctx.tcp_open.get() + 1);
    let _ = stream.set_nodelay(true);
    let mut stop = p.stop.subscribe();
    let idle = p.settings.tcp_idle_timeout;
    loop {
        if *stop.borrow() {
            break;
        }
        // Waiting for the next query ends at the idle timeout or at shutdown
        // (dropping this read then loses nothing: the connection closes).
        let read = monoio::time::timeout(idle, read_frame(&mut stream));
        let frame = monoio::select! {
            r = read => match r {
                Ok(Ok(Some(f))) => f,
                _ => break,
            },
            _ = stop.changed() => break,
        };
        let started = Instant::now();
        p.stats.global.add(ctx.id, global::TCP_QUERIES, 1);
        let ok = match server::process(&p, ctx.id, &frame, Transport::Tcp, peer.ip(), &ctx.slip) {
            Action::Reply(b) => write_frame(&mut stream, b).await.is_ok(),
            Action::Forward(req, limit) => {
                let (b, rcode) = ctx.forwarder.resolve(&p, ctx.id, &req, limit).await;
                server::count_rcode(&p, ctx.id, rcode);
                write_frame(&mut stream, b).await.is_ok()
            }
            Action::Transfer(req, auth) => {
                p.stats.global.add(ctx.id, global::XFR_OUT, 1);
                server::count_rcode(&p, ctx.id, hickory_proto::op::ResponseCode::NoError);
                tracing::info!(%peer, zone = %auth.zone.name, serial = auth.zone.serial, "dns: zone transfer out");
                let mut ok = true;
                for m in super::xfr::messages(&req, &auth) {
                    if write_frame(&mut stream, m).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                ok
            }
            Action::Update(req, auth) => {
                let b = super::update::apply(&p, ctx.id, &req, *auth).await;
                write_frame(&mut stream, b).await.is_ok()
            }
            // Garbage on a stream: close it.
            Action::Drop => false,
        };
        p.stats.answer_latency.observe(ctx.id, started.elapsed());
        if !ok || *stop.borrow() {
            break;
        }
    }
    p.tcp_active.fetch_sub(1, Ordering::Relaxed);
    p.stats.global.sub(ctx.id, global::TCP_ACTIVE, 1);
    ctx.tcp_open.set(ctx.tcp_open.get().saturating_sub(1));
}
