//! The sensor's HTTP server: hyper (HTTP/1.1) on a single-threaded tokio runtime of its own
//! thread, never the capture's. Routes are in `route`: `/metrics`, the dashboard (`/`,
//! `/dashboard.js`, `/dashboard.css`, embedded in the binary) and the JSON API (`/api/report`,
//! `/api/health`, `/api/devices`, `/api/history`). Read-only: GET and HEAD, anything else 405.
//! With credentials configured ([`super::auth`]), every route answers 401 without them.
//!
//! Limits, so a slow or hostile client can neither stall capture nor grow memory:
//! - at most [`MAX_CONNECTIONS`] connections at once; one more evicts the oldest (thousands of
//!   idle connections hold no more than that many, and a scrape still gets through);
//! - a request's head must arrive within [`HEADER_READ_TIMEOUT`] (headers sent byte by byte
//!   are cut off) and fit [`MAX_HEADER_BYTES`] (larger heads get 431 and the connection closes);
//! - a connection lives at most [`MAX_CONNECTION_LIFETIME`], however it is used;
//! - a request waits at most [`FRESH_WAIT`] for a fresh snapshot, then gets the last one.
//!
//! Memory is bounded by the connection count times hyper's buffer bound.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, watch};

use super::Shared;
use super::metrics::Encoding;

/// Most connections held at once.
pub const MAX_CONNECTIONS: usize = 128;
/// Time a client has to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head (hyper's read buffer bound; its smallest allowed value is 8 KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest a connection is kept, idle or not (a scraper reconnects).
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Metrics older than this are refreshed before a scrape is answered.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Longest a scrape waits for the refresh.
pub const FRESH_WAIT: Duration = Duration::from_secs(2);

/// The server thread.
pub(crate) struct Server {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Serves on `listener` from a thread of its own.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("appletap-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                        serve(l, shared, stopped).await;
                    }
                });
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops accepting, drops every connection and joins the thread.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let open: Arc<Mutex<BTreeMap<u64, oneshot::Sender<()>>>> = Arc::default();
    let mut next_id: u64 = 0;
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait
                    // a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let (evict, evicted) = oneshot::channel();
        {
            let mut held = open.lock().unwrap_or_else(PoisonError::into_inner);
            while held.len() >= MAX_CONNECTIONS {
                // The oldest goes: an idle one, most likely.
                if let Some((_, tx)) = held.pop_first() {
                    let _ = tx.send(());
                }
            }
            held.insert(id, evict);
        }
        let (shared, open) = (Arc::clone(&shared), Arc::clone(&open));
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route(req, &shared).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = evicted => {}
                () = tokio::time::sleep(MAX_CONNECTION_LIFETIME) => {}
            }
            open.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
    }
}

/// The dashboard's files, in the binary: no CDN, nothing fetched from elsewhere.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// The dashboard's policy: its own scripts, styles and fetches only, nothing inline, not
/// framed. Names on the page come from the network; this is the second line after the
/// script's use of `textContent`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

const ROUTES: &[&str] = &[
    "/",
    "/index.html",
    "/dashboard.js",
    "/dashboard.css",
    "/metrics",
    "/api/report",
    "/api/health",
    "/api/devices",
    "/api/history",
];

/// Answers one request.
async fn route(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !ROUTES.contains(&path) {
        return plain(StatusCode::NOT_FOUND, "not found: try / or /metrics\n");
    }
    let head = req.method() == Method::HEAD;
    if !(head || req.method() == Method::GET) {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET or HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !shared.auth.allows(authorization) {
        let mut r = plain(StatusCode::UNAUTHORIZED, "credentials needed\n");
        let challenge = if shared.auth.basic() {
            "Basic realm=\"appletap\", charset=\"UTF-8\""
        } else {
            "Bearer realm=\"appletap\""
        };
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
        return r;
    }
    let mut r = match path {
        "/metrics" => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let encoding = Encoding::from_accept(accept);
            metrics(shared, encoding).await
        }
        "/dashboard.js" => asset(DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "/dashboard.css" => asset(DASHBOARD_CSS, "text/css; charset=utf-8"),
        "/api/history" => json(Some(
            shared
                .history
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_json(),
        )),
        "/api/report" | "/api/health" | "/api/devices" => {
            refresh(shared).await;
            json(shared.documents().map(|d| match path {
                "/api/report" => d.report.clone(),
                "/api/health" => d.health.clone(),
                _ => d.devices.clone(),
            }))
        }
        _ => asset(INDEX_HTML, "text/html; charset=utf-8"),
    };
    if head {
        *r.body_mut() = Full::new(Bytes::new());
    }
    r
}

/// Waits (at most [`FRESH_WAIT`]) for a snapshot fresher than [`FRESH_FOR`].
async fn refresh(shared: &Shared) {
    if !shared.fresh_within(FRESH_FOR) {
        let mut updates = shared.generation.subscribe();
        updates.mark_unchanged();
        shared.request();
        let _ = tokio::time::timeout(FRESH_WAIT, updates.changed()).await;
    }
}

async fn metrics(shared: &Shared, encoding: Encoding) -> Response<Full<Bytes>> {
    refresh(shared).await;
    let body = shared.metrics.encode(encoding);
    Response::builder()
        .header(header::CONTENT_TYPE, encoding.content_type())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A dashboard file, with the page's security headers.
fn asset(body: &'static str, content_type: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A JSON document, never cached; 503 before the first snapshot.
fn json(body: Option<String>) -> Response<Full<Bytes>> {
    let (status, body) = match body {
        Some(b) => (StatusCode::OK, b),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\":\"no snapshot yet\"}".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}
