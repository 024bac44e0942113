//! Serving over TCP with the two faults a router alone cannot produce.
//!
//! * **Connection reset.** Every accepted socket is wrapped in a [`ResettableStream`] whose
//!   reset flag the request pipeline can reach through `ConnectInfo<ConnHandle>`. To reset,
//!   the pipeline sets the flag and returns a placeholder response; the stream then fails
//!   hyper's first write with `ECONNRESET`, hyper drops the connection, and the stream's
//!   `Drop` sets `SO_LINGER` to zero before closing, so the kernel sends a TCP RST instead
//!   of a FIN. The client sees "connection reset by peer" and no byte of a response.
//! * **Refused connections** (outage mode `refuse`). The [`EmuListener`] closes its
//!   listening socket while the outage lasts, so connects fail with `ECONNREFUSED`, then
//!   binds the same address again. Connections accepted in the gap are reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::shared::Shared;

/// How long the listener waits before retrying a failed accept or re-bind.
const RETRY_DELAY: Duration = Duration::from_millis(50);
/// Longest sleep while the listener is closed, so a reset ends a refuse outage promptly.
const OUTAGE_POLL: Duration = Duration::from_millis(25);

/// A TCP stream that can be made to end with a reset.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            reset: Arc::new(AtomicBool::new(false)),
        }
    }

    fn is_reset(&self) -> bool {
        self.reset.load(Ordering::SeqCst)
    }
}

fn reset_error<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return reset_error();
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.is_reset() {
            return reset_error();
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.is_reset() {
            return reset_error();
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return reset_error();
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.is_reset() {
            return reset_error();
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Closes `stream` with a TCP RST rather than a FIN.
fn abort(stream: &TcpStream) {
    // Tokio deprecates `set_linger` because a *non-zero* linger blocks the thread on drop.
    // A zero linger never blocks: the kernel discards the buffers and sends RST at once.
    #[allow(deprecated)]
    let result = stream.set_linger(Some(Duration::ZERO));
    if let Err(error) = result {
        tracing::debug!(error = %error, "emulator: could not set SO_LINGER for a reset");
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.is_reset() {
            abort(&self.stream);
        }
    }
}

/// Per-connection handle given to the pipeline as `ConnectInfo`.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    reset: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Marks the connection for reset; the response being produced is never sent.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, EmuListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, EmuListener>) -> Self {
        Self {
            reset: Arc::clone(&stream.io().reset),
        }
    }
}

/// A TCP listener that closes itself during refuse-mode outages.
pub(crate) struct EmuListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    sh: Arc<Shared>,
}

impl Listener for EmuListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(until) = self.sh.refusing_until() {
                if self.inner.take().is_some() {
                    tracing::info!("emulator: listener closed for a refuse-mode outage");
                }
                let wait = until.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(OUTAGE_POLL)).await;
                continue;
            }
            if self.inner.is_none() {
                match TcpListener::bind(self.addr).await {
                    Ok(listener) => {
                        tracing::info!("emulator: listener reopened after the outage");
                        self.inner = Some(listener);
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "emulator: could not reopen the listener");
                        tokio::time::sleep(RETRY_DELAY).await;
                        continue;
                    }
                }
            }
            let Some(listener) = self.inner.as_ref() else {
                continue;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        if self.sh.refusing_until().is_some() {
                            abort(&stream);
                            continue;
                        }
                        return (ResettableStream::new(stream), remote);
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "emulator: accept failed");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                },
                () = self.sh.outage_changed.notified() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains connections.
pub(crate) async fn serve(
    sh: Arc<Shared>,
    router: Router,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let listener = EmuListener {
        inner: Some(listener),
        addr,
        sh,
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
