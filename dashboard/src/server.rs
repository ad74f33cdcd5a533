//! The HTTP server: one router over the pages, the state and page cache they
//! share, metrics and ETags, static files, health and the shared error pages.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::pages::{Config, api, detail, overview};
use crate::read::ReadModel;

/// Largest response the ETag layer buffers; larger ones pass without an ETag.
const ETAG_LIMIT: usize = 8 << 20;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOnly {
    route: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    duration: Family<RouteOnly, Histogram>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("governor_dashboard");
        let requests = Family::<RouteLabels, Counter>::default();
        let duration = Family::<RouteOnly, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ])
        });
        registry.register(
            "http_requests",
            "HTTP requests served, by route and status code",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to produce a response, by route",
            duration.clone(),
        );
        Self {
            registry,
            requests,
            duration,
        }
    }
}

/// Most rendered pages kept; the cache is emptied when it would grow past this.
const PAGE_CACHE_ENTRIES: usize = 512;

/// A page rendered from one snapshot version, with its ETag.
#[derive(Clone)]
pub(crate) struct Rendered {
    version: u64,
    body: axum::body::Bytes,
    etag: HeaderValue,
    content_type: &'static str,
}

impl Rendered {
    pub(crate) fn response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                ),
                (header::ETAG, self.etag.clone()),
            ],
            Body::from(self.body.clone()),
        )
            .into_response()
    }
}

/// Pages that depend only on the snapshot, by path and query: rendered once per
/// snapshot version however many viewers ask.
#[derive(Default)]
pub(crate) struct PageCache(std::sync::Mutex<HashMap<String, Rendered>>);

impl PageCache {
    pub(crate) fn get(&self, key: &str, version: u64) -> Option<Rendered> {
        let map = self.0.lock().ok()?;
        map.get(key).filter(|r| r.version == version).cloned()
    }

    pub(crate) fn put(
        &self,
        key: String,
        version: u64,
        body: String,
        content_type: &'static str,
    ) -> Rendered {
        let body = axum::body::Bytes::from(body);
        let etag =
            HeaderValue::from_str(&etag_of(&body)).unwrap_or(HeaderValue::from_static("W/\"0\""));
        let r = Rendered {
            version,
            body,
            etag,
            content_type,
        };
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= PAGE_CACHE_ENTRIES {
                map.clear();
            }
            map.insert(key, r.clone());
        }
        r
    }
}

/// What every handler shares: the source, the configuration, metrics and cached pages.
pub(crate) struct App<M> {
    pub(crate) model: M,
    pub(crate) config: Config,
    metrics: Metrics,
    pub(crate) pages: PageCache,
}

pub(crate) type Shared<M> = Arc<App<M>>;

/// The dashboard's routes over a read model.
pub fn router<M: ReadModel>(model: M, config: Config) -> Router {
    let app = Arc::new(App {
        model,
        config,
        metrics: Metrics::new(),
        pages: PageCache::default(),
    });
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    Router::new()
        .route("/", get(overview::handler::<M>))
        .route("/slos/{namespace}/{name}", get(detail::handler::<M>))
        .route("/api/v1/slos", get(api::list::<M>))
        .route("/api/v1/slos/{namespace}/{name}", get(api::one::<M>))
        .route("/static/governor.css", get(css))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<M>))
        .route("/metrics", get(metrics::<M>))
        .fallback(not_found::<M>)
        .layer(middleware::from_fn(etag))
        .layer(middleware::from_fn_with_state(app.clone(), observe::<M>))
        .layer(CompressionLayer::new())
        .layer(header("content-security-policy", CONTENT_SECURITY_POLICY))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "no-referrer"))
        .layer(header("cross-origin-opener-policy", "same-origin"))
        .layer(header("cross-origin-resource-policy", "same-origin"))
        .layer(header(
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        ))
        .layer(header("cache-control", "no-cache"))
        .with_state(app)
}

/// An HTML page, or a plain 500 when it could not be rendered.
pub(crate) fn page(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

/// A page for what went wrong: unknown SLO, unreachable source, bad request.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub title: String,
    pub refresh: u32,
    pub banner: Option<String>,
    pub heading: String,
    pub message: String,
}

/// `text` under `heading` on a page of its own.
pub(crate) fn message<M>(
    app: &App<M>,
    status: StatusCode,
    heading: &str,
    text: String,
) -> Response {
    page(
        status,
        Message {
            title: heading.to_string(),
            refresh: 0,
            banner: app.config.banner.clone(),
            heading: heading.to_string(),
            message: text,
        }
        .render(),
    )
}

/// `{"error": message}`, for the API.
pub(crate) fn json_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn readyz<M: ReadModel>(State(app): State<Shared<M>>) -> Response {
    if app.model.ready() {
        "ready".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the SLO list has not been read yet",
        )
            .into_response()
    }
}

async fn metrics<M: ReadModel>(State(app): State<Shared<M>>) -> Response {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &app.metrics.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/governor.css"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

async fn not_found<M: ReadModel>(State(app): State<Shared<M>>, req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("no API route {}", req.uri().path()),
        );
    }
    message(
        &app,
        StatusCode::NOT_FOUND,
        "Page not found",
        format!("Nothing lives at {}.", req.uri().path()),
    )
}

/// Counts and times every request by its route template.
async fn observe<M: ReadModel>(State(app): State<Shared<M>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let res = next.run(req).await;
    let m = &app.metrics;
    m.duration
        .get_or_create(&RouteOnly {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RouteLabels {
            route,
            code: res.status().as_u16().to_string(),
        })
        .inc();
    res
}

/// A weak ETag of a body.
fn etag_of(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

/// Whether an If-None-Match value names `tag` (weak comparison).
fn matches(wanted: Option<&HeaderValue>, tag: &str) -> bool {
    wanted.and_then(|w| w.to_str().ok()).is_some_and(|w| {
        w.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == tag.trim_start_matches("W/")
        })
    })
}

fn not_modified(mut parts: axum::http::response::Parts) -> Response {
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.status = StatusCode::NOT_MODIFIED;
    Response::from_parts(parts, Body::empty())
}

/// A weak ETag over the uncompressed body, and 304 when the client has it.
/// Cached pages come with their ETag already.
async fn etag(req: Request, next: Next) -> Response {
    let cacheable = req.method() == Method::GET || req.method() == Method::HEAD;
    let wanted = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    if !cacheable || res.status() != StatusCode::OK {
        return res;
    }
    if let Some(tag) = res
        .headers()
        .get(header::ETAG)
        .and_then(|t| t.to_str().ok())
    {
        if matches(wanted.as_ref(), tag) {
            return not_modified(res.into_parts().0);
        }
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, ETAG_LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "response too large").into_response();
    };
    let tag = etag_of(&bytes);
    let Ok(value) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let matches = matches(wanted.as_ref(), &tag);
    parts.headers.insert(header::ETAG, value);
    if matches {
        return not_modified(parts);
    }
    Response::from_parts(parts, Body::from(bytes))
}
