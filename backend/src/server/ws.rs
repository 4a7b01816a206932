//! The `/ws` upgrade: checks the Origin (same origin unless there is none, as from the CLI),
//! then hands the socket to a new session.

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::session;
use crate::session::registry::{Entry, SessionId};

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    // Frames past the protocol's limit are read (up to this bound) so that the session can
    // answer them with an error instead of losing the connection.
    let cap = (state.limits.max_frame_bytes as usize).saturating_mul(16);
    // A browser without a (well-formed) session cookie gets a new id with the answer.
    let known = SessionId::from_headers(&headers);
    let id = known.clone().unwrap_or_else(SessionId::random);
    let cookie = id.cookie();
    let mut response = ws
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| attach(socket, state, id));
    if known.is_none() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Hand the socket to the browser's live session, or start a new one.
async fn attach(mut socket: WebSocket, state: AppState, id: SessionId) {
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
                let tracker = state.sessions.clone();
                tracker
                    .track_future(session::run(socket, state, id, rx))
                    .await;
                return;
            }
        }
    }
}

/// A browser always sends Origin; it must name the host it connected to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
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
}
