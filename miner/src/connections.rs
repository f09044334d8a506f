//! The miner's accept loop: every TCP connection is admitted, bounded in time and counted before any
//! byte of HTTP is read.
//!
//! Nothing here needs a signature, so it is what stands between an anonymous peer and the miner's file
//! descriptors:
//!
//! * **connection cap**: at most [`Limits::max_connections`] connections serve every route; up to
//!   [`Limits::health_connections`] more are admitted for the public routes only (`/health`, `/info`,
//!   `/metrics`; the signed routes answer 503 `connections_full` there), so an orchestrator's health
//!   check still gets through when the cap is reached; beyond both, a new connection is closed at once.
//!   Keep the sum below the process's open-file limit (`ulimit -n`, often 1,024).
//! * **per-IP cap**: at most [`Limits::max_connections_per_ip`] connections from one address.
//! * **header-read timeout**: an HTTP/1 request's headers must arrive within
//!   [`Limits::header_read_timeout_secs`] (slow-header clients are cut off).
//! * **idle timeout**: a connection with no request in flight and no bytes moving for
//!   [`Limits::idle_timeout_secs`] is closed (gracefully: an HTTP/2 peer gets a GOAWAY). Connections
//!   admitted on the health reserve get a fifth of it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use bench_tasks::wire::{HEALTH_PATH, INFO_PATH, METRICS_PATH};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::config::Limits;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// How a connection was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the cap: every route.
    Full,
    /// On the health reserve: public routes only.
    PublicOnly,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The connection table: how many are open, in all and per address.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    counts: Arc<Mutex<Counts>>,
    max: usize,
    reserve: usize,
    per_ip: usize,
}

/// One open connection's place in the [`ConnectionGate`]; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    gate: ConnectionGate,
    ip: IpAddr,
    /// How it was admitted.
    pub admission: Admission,
}

impl ConnectionGate {
    /// A gate with the caps of `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            counts: Arc::default(),
            max: limits.max_connections.max(1),
            reserve: limits.health_connections,
            per_ip: limits.max_connections_per_ip.max(1),
        }
    }

    /// Admits a connection from `ip`, or `None` when it must be closed at once.
    pub fn admit(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.per_ip || c.total >= self.max + self.reserve {
            return None;
        }
        let admission = if c.total < self.max {
            Admission::Full
        } else {
            Admission::PublicOnly
        };
        c.total += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        Some(ConnectionSlot {
            gate: self.clone(),
            ip,
            admission,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.gate.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Activity of one connection: when bytes last moved, and requests in flight.
#[derive(Debug)]
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A request in flight on a connection (the connection is not idle while one exists).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The accept loop's settings.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub gate: ConnectionGate,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub metrics: Metrics,
}

impl ServeConfig {
    pub(crate) fn new(limits: &Limits, metrics: Metrics) -> Self {
        Self {
            gate: ConnectionGate::new(limits),
            header_read_timeout: Duration::from_secs(limits.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs.max(1)),
            metrics,
        }
    }
}

/// Accepts and serves connections until `shutdown` turns true; then lets open connections finish
/// (each gets a graceful shutdown) before returning.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set stays as small as the open connections.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: back off briefly instead of
                // spinning, as the OS will not have more to give immediately.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = config.gate.admit(peer.ip()) else {
            config.metrics.connections_refused.inc();
            drop(tcp);
            continue;
        };
        config.metrics.connections.inc();
        // Latency matters more than throughput for small signed messages.
        let _ = tcp.set_nodelay(true);
        tasks.spawn(serve_one(
            tcp,
            peer,
            slot,
            router.clone(),
            config.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    router: Router,
    config: ServeConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: tcp,
        activity: Arc::clone(&activity),
    });
    let public_only = slot.admission == Admission::PublicOnly;
    let idle_limit = if public_only {
        config.idle_timeout / 5
    } else {
        config.idle_timeout
    };
    let service_activity = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_flight = InFlight::new(&service_activity);
        let router = router.clone();
        async move {
            let response = route(router, request, peer, public_only).await;
            drop(in_flight);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut tick = tokio::time::interval(Duration::from_millis(250).min(idle_limit / 4));
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = tick.tick() => {
                match closing {
                    None if activity.idle_for() >= idle_limit => {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                        config.metrics.connections_idle_closed.inc();
                    }
                    // A peer that ignores the graceful close is cut off.
                    Some(at) if at.elapsed() >= idle_limit.max(Duration::from_secs(1)) => break,
                    _ => {}
                }
            }
            _ = shutdown.wait_for(|stop| *stop), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
        }
    }
    drop(slot);
}

/// Runs the router for one request; connections on the health reserve reach only the public routes.
async fn route(
    router: Router,
    mut request: Request<Incoming>,
    peer: SocketAddr,
    public_only: bool,
) -> Response<Body> {
    if public_only && ![HEALTH_PATH, INFO_PATH, METRICS_PATH].contains(&request.uri().path()) {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "connections_full",
            "this miner has its maximum of connections open; retry shortly",
        )
        .into_response();
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
    request.extensions_mut().insert(ConnectInfo(peer));
    match router.oneshot(request.map(Body::new)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_counts_per_ip_and_keeps_a_public_reserve() {
        let limits = Limits {
            max_connections: 3,
            health_connections: 1,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let gate = ConnectionGate::new(&limits);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "per-IP cap");
        let b1 = gate.admit(b).unwrap();
        assert_eq!(b1.admission, Admission::Full);
        let b2 = gate.admit(b).unwrap();
        assert_eq!(
            b2.admission,
            Admission::PublicOnly,
            "over the cap: the health reserve"
        );
        assert!(gate.admit(c).is_none(), "cap and reserve full");
        drop(a1);
        assert_eq!(gate.open(), 3);
        assert_eq!(gate.admit(c).unwrap().admission, Admission::PublicOnly);
        drop(b2);
        assert_eq!(gate.admit(a).unwrap().admission, Admission::Full);
    }
}
