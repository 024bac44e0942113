//! The HTTP/1.1 server loop: accept, serve each connection with hyper, and hold every
//! connection to the limits of `[server]`, so that slow or silent clients cannot pin file
//! descriptors (issue 8 item 5: 300 half-open connections once stayed forever and
//! `/healthz` stopped answering).
//!
//! - **Connection cap** (`server.max_connections`): no more connections are accepted while
//!   that many are open; the next wait in the kernel's accept queue until one closes.
//! - **Header-read timeout** (`server.header_read_timeout`): once the first byte of a request
//!   has arrived, its whole head must arrive within this time (slow-loris).
//! - **Idle timeout** (`server.idle_timeout`): a connection with no request being served and
//!   no bytes moving for this long is closed (a client that connects and sends nothing, a
//!   keep-alive connection left idle); so is one whose response could not be written for
//!   this long (a client that stopped reading, say the feed, without closing).
//!
//! While a request is served (its handler runs or its response body is still being
//! produced) the header and idle timeouts do not apply: `limits.request_timeout` bounds the
//! handler, and a streamed body (the feed) may pause between pages. Request bodies are read
//! by the handler, so a slow body is bounded by the request time limit too.
//!
//! hyper's own header-read timer is not used: it starts when the connection is ready for a
//! request, so it would also be the idle timeout, and the two could not differ. Instead the
//! connection's IO is wrapped to note when bytes move, the service notes when a handler
//! starts and ends, and a watchdog per connection closes it when a deadline has passed.
//!
//! On shutdown the listener is closed, each connection finishes the request it is serving
//! (hyper's graceful shutdown) and the loop returns once all are closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// The limits a connection is held to (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time from the first byte of a request to the end of its head.
    pub header_read_timeout: Duration,
    /// Time without a handler running and without bytes moving.
    pub idle_timeout: Duration,
}

/// `u64::MAX`: no request head has started.
const NONE: u64 = u64::MAX;

/// What the IO wrapper, the service and the watchdog share about one connection. Times
/// are milliseconds since the connection was accepted.
struct ConnState {
    opened: Instant,
    /// Handlers running (0 or 1 with HTTP/1.1 without pipelining).
    busy: AtomicUsize,
    /// Last time bytes were read or written.
    last_io: AtomicU64,
    /// When the first byte of the next request's head arrived, or [`NONE`].
    head_started: AtomicU64,
    /// Since when a write has been refused by a full socket buffer, or [`NONE`].
    write_blocked: AtomicU64,
}

impl ConnState {
    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
        self.write_blocked.store(NONE, Ordering::Relaxed);
    }

    fn write_pending(&self) {
        let _ = self.write_blocked.compare_exchange(
            NONE,
            self.now(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// A handler starts: its head is complete.
    fn begin(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
    }

    /// A handler ended (answered, or dropped because the client went away).
    fn end(&self) {
        self.head_started.store(NONE, Ordering::Release);
        self.last_io.store(self.now(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &ConnLimits) -> Option<&'static str> {
        let now = self.now();
        let idle_ms = limits.idle_timeout.as_millis() as u64;
        let blocked = self.write_blocked.load(Ordering::Acquire);
        if blocked != NONE && now.saturating_sub(blocked) >= idle_ms {
            return Some("idle_timeout (the client stopped reading)");
        }
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != NONE && now.saturating_sub(head) >= limits.header_read_timeout.as_millis() as u64
        {
            return Some("header_read_timeout");
        }
        let last = self.last_io.load(Ordering::Relaxed);
        (now.saturating_sub(last) >= idle_ms).then_some("idle_timeout")
    }
}

/// Ends a request's busy time when dropped: when its response body has been sent whole, or
/// when the handler or the body was dropped because the client went away.
struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that keeps its request busy until it ends.
struct Guarded {
    inner: axum::body::Body,
    busy: Option<Busy>,
}

impl hyper::body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None)) {
            self.busy = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's socket, noting when bytes move.
struct Tracked {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read();
        }
        r
    }
}

impl Tracked {
    fn note_write(&self, r: &Poll<io::Result<usize>>) {
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => self.state.wrote(),
            Poll::Pending => self.state.write_pending(),
            _ => {}
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.note_write(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How often a connection's watchdog looks: a quarter of the shorter timeout, between 50 ms
/// and 1 s (a connection closes at most that late).
fn tick(limits: &ConnLimits) -> Duration {
    (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish the request they serve and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut warned_full = false;
    loop {
        // Wait for a free slot before accepting: at the cap, new connections stay in the
        // kernel's accept queue rather than costing a descriptor here.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        if slots.available_permits() == 0 && !warned_full {
            warned_full = true;
            tracing::warn!(
                server.max_connections = limits.max_connections,
                "the connection limit is reached; new connections wait until one closes"
            );
        } else if slots.available_permits() > limits.max_connections / 2 {
            warned_full = false;
        }
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off briefly instead of spinning.
                    tracing::warn!(error.message = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, router, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// Resolves once the server stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves one connection until it closes, a deadline passes, or the server stops.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let state = Arc::new(ConnState {
        opened: Instant::now(),
        busy: AtomicUsize::new(0),
        last_io: AtomicU64::new(0),
        head_started: AtomicU64::new(NONE),
        write_blocked: AtomicU64::new(NONE),
    });
    let io = TokioIo::new(Tracked {
        inner: stream,
        state: state.clone(),
    });
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        service_state.begin();
        let busy = Busy(service_state.clone());
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(res.map(|inner| Guarded {
                inner,
                busy: Some(busy),
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut watchdog = tokio::time::interval(tick(&limits));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = watchdog.tick() => {
                if let Some(why) = state.expired(&limits) {
                    tracing::debug!(server.closed = why, "connection closed");
                    return; // Dropping the connection closes the socket.
                }
            }
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                // Finish the request being served, then close; the deadlines still apply.
                loop {
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        _ = watchdog.tick() => {
                            if state.expired(&limits).is_some() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}
