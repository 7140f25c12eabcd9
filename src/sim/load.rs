//! How much a client leans on the simulator at once: TCP connections open and `/3/` requests in
//! flight, each with its peak (`GET /__sim/stats`: `open_connections`, `max_open_connections`,
//! `requests_in_flight`, `max_requests_in_flight`). TMDb caps both per client, so tests assert
//! a client (or the pods of a run together) stays under the cap.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A live count and the highest value it reached since the last reset.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Gauge {
    /// Counts one more; the returned guard counts it off when dropped.
    pub fn enter(self: &Arc<Self>) -> GaugeGuard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        GaugeGuard(self.clone())
    }

    /// The current count.
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// The highest count since the last [`reset_peak`](Gauge::reset_peak).
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Starts a new peak from the current count (what is open stays counted).
    pub fn reset_peak(&self) {
        self.peak.store(self.now(), Ordering::SeqCst);
    }
}

/// One entry of a [`Gauge`], counted off on drop (also when a handler is cancelled because its
/// client went away).
#[derive(Debug)]
pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A TCP listener whose accepted connections count on a [`Gauge`] while they are open.
pub struct CountingListener {
    inner: TcpListener,
    connections: Arc<Gauge>,
}

impl CountingListener {
    /// Wraps `inner`, counting its connections on `connections`.
    pub fn new(inner: TcpListener, connections: Arc<Gauge>) -> Self {
        CountingListener { inner, connections }
    }
}

impl Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let guard = self.connections.enter();
        (
            CountedStream {
                stream,
                _guard: guard,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counted until dropped (closed).
pub struct CountedStream {
    stream: TcpStream,
    _guard: GaugeGuard,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_counts_what_is_open_and_keeps_its_peak_until_reset() {
        let g = Arc::new(Gauge::default());
        let a = g.enter();
        let b = g.enter();
        assert_eq!((g.now(), g.peak()), (2, 2));
        drop(a);
        assert_eq!((g.now(), g.peak()), (1, 2));
        g.reset_peak();
        assert_eq!((g.now(), g.peak()), (1, 1), "the open one stays counted");
        drop(b);
        assert_eq!((g.now(), g.peak()), (0, 1));
    }
}
