//! The `/ws` upgrade: checks the Origin (same origin, or one `--allow-origin` names; a request
//! without one, as from the CLI, passes),
//! admits a new session (host load, sessions per address), then hands the socket to it. Also
//! the gate in front of everything (the token) and `/healthz`.

use std::net::SocketAddr;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::admission::IpSlot;
use super::AppState;
use crate::metrics::Refusal;
use crate::session;
use crate::session::registry::{Entry, SessionId};

/// The cookie that carries the token once a page was opened with `?token=`.
const TOKEN_COOKIE: &str = "isolab_token";

/// `/healthz`: the host's load as JSON; 503 when new sessions are refused, so a balancer drops
/// the node.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let load = state.admission.load(state.registry.count());
    let code = match load.status {
        "ok" => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, axum::Json(load)).into_response()
}

/// `/readyz`: 200 while the server serves its sessions, busy or not; 503 once it is stopping.
/// A Kubernetes readiness probe belongs here, not on `/healthz`: a node that is full for new
/// sessions must stay reachable for the ones it has.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.shutdown.is_cancelled() {
        false => (StatusCode::OK, "ready\n").into_response(),
        true => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response(),
    }
}

/// `/metrics`: Prometheus' text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let gauges = crate::metrics::Gauges {
        node: state.admission.node.clone(),
        sessions: state.registry.count(),
        containers: state.containers.load(std::sync::atomic::Ordering::Relaxed),
        pool_ready: state.pool.as_ref().map_or(0, |p| p.ready()),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
        .into_response()
}

/// Every answer names the node that gave it (`X-Isolab-Node`), for whoever debugs a balancer.
pub async fn node_header(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&state.admission.node) {
        response.headers_mut().insert(NODE_HEADER, v);
    }
    response
}

/// What a session's socket reads at once.
const READ_BUFFER: usize = 16 * 1024;

/// The header that names the node.
pub const NODE_HEADER: &str = "x-isolab-node";

/// The cookie that names the node holding a browser's session, for a balancer to route by.
pub const NODE_COOKIE: &str = "isolab_node";

/// In front of every route but `/healthz`, `/readyz` and `/metrics`: with `--token`, a request needs it in `?token=` or
/// in the cookie a page opened with it got; and a browser without a session is shown a clear
/// page instead of the playground while the host is too busy for a new one.
pub async fn page_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if ["/healthz", "/readyz", "/metrics"].contains(&path.as_str()) {
        return next.run(request).await;
    }
    let from_query = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_string)
    });
    let from_cookie = cookie(request.headers(), TOKEN_COOKIE);
    let query_ok = from_query.is_some() && state.admission.token_ok(from_query.as_deref());
    if !query_ok && !state.admission.token_ok(from_cookie.as_deref()) {
        let text = "this isolab needs its token: open the link your trainer gave \
                    (it ends in ?token=...)";
        if path == "/ws" {
            state.metrics.refused(Refusal::Token);
        }
        return match path.as_str() {
            "/ws" => (StatusCode::UNAUTHORIZED, format!("{text}\n")).into_response(),
            _ => (
                StatusCode::UNAUTHORIZED,
                Html(notice("A token is needed", text)),
            )
                .into_response(),
        };
    }
    let page = path == "/" || path == "/index.html";
    let has_session =
        SessionId::from_headers(request.headers()).is_some_and(|id| state.registry.is_live(&id));
    if page && !has_session {
        let load = state.admission.load(state.registry.count());
        if load.status != "ok" {
            let text = format!(
                "This server is too busy for a new session right now ({}). Try again in a \
                 few minutes.",
                load.reasons.join("; ")
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(notice("isolab is busy", &text)),
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    if let (true, Some(token)) = (query_ok, from_query) {
        let value = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// A small HTML page with a title and a sentence.
fn notice(title: &str, text: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<!doctype html><meta charset=utf-8><title>{t}</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\
         <h1>{t}</h1><p>{x}</p></body>\n",
        t = esc(title),
        x = esc(text)
    )
}

/// A cookie's value from the request headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.admission.allowed_origins) {
        state.metrics.refused(Refusal::Origin);
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    // A new session (not a reload of a live one) is admitted only while the host has room and
    // its address holds fewer than its share.
    let live = SessionId::from_headers(&headers).is_some_and(|id| state.registry.is_live(&id));
    let slot = if live {
        None
    } else {
        let load = state.admission.load(state.registry.count());
        if load.status != "ok" {
            let text = format!(
                "the server is too busy for a new session: {}\n",
                load.reasons.join("; ")
            );
            state.metrics.refused(Refusal::Busy);
            return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
        }
        // A page opened from a live workshop's join link (`/ws?join=CODE`): a classroom is
        // often one address, and its trainer invited every attendee.
        let invited = uri
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("join=")))
            .is_some_and(|code| state.workshops.is_live_code(code));
        let max = if invited {
            0
        } else {
            state.admission.max_sessions_per_ip
        };
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client =
            super::admission::client_ip(peer.ip(), forwarded, &state.admission.trusted_proxies);
        match state.per_ip.take(client, max) {
            Some(slot) => Some(slot),
            None => {
                state.metrics.refused(Refusal::PerAddress);
                let text = format!("{client} already has {max} sessions on this server\n");
                return (StatusCode::TOO_MANY_REQUESTS, text).into_response();
            }
        }
    };
    // Frames past the protocol's limit are read (up to this bound) so that the session can
    // answer them with an error instead of losing the connection.
    let cap = (state.limits.max_frame_bytes as usize).saturating_mul(16);
    // A browser without a (well-formed) session cookie gets a new id with the answer.
    let known = SessionId::from_headers(&headers);
    let id = known.clone().unwrap_or_else(SessionId::random);
    let cookie = id.cookie();
    let node = format!(
        "{NODE_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        state.admission.node
    );
    let mut response = ws
        // Read in 16 KiB steps rather than tungstenite's 128 KiB, which it zero-fills on every
        // read: an idle session's socket then holds 16 KiB, not 128 (docs/capacity.md). A
        // larger frame still arrives whole (the buffer grows for it).
        .read_buffer_size(READ_BUFFER)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| attach(socket, state, id, slot));
    if known.is_none() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    // A new session (here) pins the browser to this node; a reattach keeps the pin fresh.
    if let Ok(v) = HeaderValue::from_str(&node) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Hand the socket to the browser's live session, or start a new one (which holds `slot`, its
/// place in its address's count, until it ends).
async fn attach(mut socket: WebSocket, state: AppState, id: SessionId, slot: Option<IpSlot>) {
    loop {
        match state.registry.entry(&id) {
            Entry::Existing(tx) => match tx.send(socket).await {
                Ok(()) => return,
                // It ended meanwhile: start a new one.
                Err(returned) => {
                    socket = returned.0;
                    state.registry.remove(&id);
                }
            },
            Entry::New(rx) => {
                state.metrics.session_started();
                let tracker = state.sessions.clone();
                tracker
                    .track_future(session::run(socket, state, id, rx))
                    .await;
                drop(slot);
                return;
            }
        }
    }
}

/// A browser always sends Origin; it must name the host it connected to, or be one of
/// `allowed` (exact origins, as [`super::admission::parse_origin`] writes them).
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    fn same_origin(headers: &HeaderMap) -> bool {
        origin_allowed(headers, &[])
    }

    #[test]
    fn only_the_same_origin_may_upgrade() {
        assert!(same_origin(&headers(None, "127.0.0.1:8080")));
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:8080"
        )));
        assert!(!same_origin(&headers(
            Some("http://evil.example"),
            "127.0.0.1:8080"
        )));
        assert!(!same_origin(&headers(Some("null"), "127.0.0.1:8080")));
    }

    #[test]
    fn an_allowed_origin_may_upgrade_and_no_other() {
        let allowed = ["https://lab.example.com".to_string()];
        let host = "127.0.0.1:8080";
        let ok = |origin| origin_allowed(&headers(Some(origin), host), &allowed);
        assert!(ok("https://lab.example.com"));
        assert!(ok("https://LAB.example.com"), "hosts compare without case");
        assert!(ok("http://127.0.0.1:8080"), "the same origin still may");
        for refused in [
            "http://lab.example.com",
            "https://lab.example.com:8443",
            "https://lab.example.com.evil.example",
            "https://evil.example",
            "null",
        ] {
            assert!(!ok(refused), "{refused}");
        }
        assert!(origin_allowed(&headers(None, host), &allowed));
    }
}
