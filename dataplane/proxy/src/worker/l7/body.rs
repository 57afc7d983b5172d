//! Body wrappers: they stream frames through untouched (data and trailers,
//! with hyper's flow control behind them), count bytes, and run the
//! end-of-request bookkeeping exactly once — when the body ends or is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::snapshot::RouteRuntime;
use crate::stats::Route;

/// A request body on its way to a backend.
pub(super) struct Counted {
    inner: Incoming,
    runtime: Arc<RouteRuntime>,
    worker: usize,
    index: Route,
}

impl Counted {
    pub(super) fn new(
        inner: Incoming,
        runtime: Arc<RouteRuntime>,
        worker: usize,
        index: Route,
    ) -> Self {
        Self {
            inner,
            runtime,
            worker,
            index,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && let Some(d) = f.data_ref()
        {
            this.runtime
                .counters
                .add(this.worker, this.index, d.len() as u64);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once when a response body is finished (or abandoned), with the
/// number of body bytes sent.
pub(super) trait OnEnd {
    fn on_end(self, bytes: u64, complete: bool);
}

/// A response body on its way to the client.
pub(super) struct Tracked<E: OnEnd> {
    inner: Either<Incoming, Full<Bytes>>,
    bytes: u64,
    end: Option<E>,
}

impl<E: OnEnd> Tracked<E> {
    pub(super) fn new(inner: Either<Incoming, Full<Bytes>>, end: E) -> Self {
        Self {
            inner,
            bytes: 0,
            end: Some(end),
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(end) = self.end.take() {
            end.on_end(self.bytes, complete);
        }
    }
}

impl<E: OnEnd> Drop for Tracked<E> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<E: OnEnd + Unpin> Body for Tracked<E> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let r = match &mut this.inner {
            Either::Left(b) => Pin::new(b).poll_frame(cx),
            Either::Right(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
        };
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.bytes += d.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
