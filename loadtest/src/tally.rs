//! Per-thread results: a latency histogram, counters and errors by kind.
//! Each worker thread owns one; they are merged once, after the run.

use hdrhistogram::Histogram;

/// Why a request or connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The TCP connection could not be made.
    Connect,
    /// A TLS failure (handshake, certificate, alert, bad record).
    Tls,
    /// A response that is not a well-formed 2xx, or a DNS answer with the wrong id.
    Protocol,
    /// The peer reset the connection.
    Reset,
    /// The peer closed before the response was complete.
    Eof,
    /// No answer within `--timeout`.
    Timeout,
    /// Any other socket error.
    Io,
}

impl ErrorKind {
    pub(crate) const ALL: [ErrorKind; 7] = [
        Self::Connect,
        Self::Tls,
        Self::Protocol,
        Self::Reset,
        Self::Eof,
        Self::Timeout,
        Self::Io,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Reset => "reset",
            Self::Eof => "eof",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => Self::Reset,
            K::ConnectionRefused | K::AddrNotAvailable | K::AddrInUse => Self::Connect,
            K::UnexpectedEof => Self::Eof,
            K::TimedOut => Self::Timeout,
            _ => Self::Io,
        }
    }
}

/// Latencies are recorded in microseconds, 1 µs to 60 s, 3 significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) latency_us: Histogram<u64>,
    /// Completed requests (responses, DNS answers).
    pub(crate) requests: u64,
    /// Response body bytes (HTTP) or answer bytes (DNS).
    pub(crate) body_bytes: u64,
    /// TCP connections opened.
    pub(crate) connects: u64,
    /// Connections opened again after the server closed one (dns-tcp).
    pub(crate) reconnects: u64,
    /// DNS answers by RCODE name.
    pub(crate) rcodes: [u64; 16],
    errors: [u64; ErrorKind::ALL.len()],
    /// What the first completed TLS handshake negotiated.
    pub(crate) negotiated: Option<String>,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant, valid histogram bounds"),
            requests: 0,
            body_bytes: 0,
            connects: 0,
            reconnects: 0,
            rcodes: [0; 16],
            errors: [0; ErrorKind::ALL.len()],
            negotiated: None,
        }
    }

    pub(crate) fn record(&mut self, latency: std::time::Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    pub(crate) fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    pub(crate) fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()]
    }

    pub(crate) fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub(crate) fn merge(&mut self, other: &Tally) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.requests += other.requests;
        self.body_bytes += other.body_bytes;
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        for (a, b) in self.rcodes.iter_mut().zip(other.rcodes) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        if self.negotiated.is_none() {
            self.negotiated.clone_from(&other.negotiated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn merge_adds_everything() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        a.record(Duration::from_micros(100));
        b.record(Duration::from_micros(300));
        b.record(Duration::from_secs(3600));
        a.requests = 1;
        b.requests = 2;
        b.error(ErrorKind::Reset);
        b.negotiated = Some("x".into());
        a.merge(&b);
        assert_eq!(a.latency_us.len(), 3);
        assert_eq!(a.requests, 3);
        assert_eq!(a.errors(ErrorKind::Reset), 1);
        assert_eq!(a.total_errors(), 1);
        assert_eq!(a.negotiated.as_deref(), Some("x"));
        assert!(a.latency_us.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 500);
    }
}
