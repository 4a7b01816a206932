//! Which browser is which: a random 128-bit session id in an HttpOnly, SameSite cookie, and the
//! live sessions by id, so that a reload or a new connection reaches the session it belongs to.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::ws::WebSocket;
use axum::http::{header, HeaderMap, HeaderValue};
use tokio::sync::mpsc;

pub const COOKIE: &str = "isolab_session";

/// 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> SessionId {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the kernel's random source");
        SessionId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn parse(s: &str) -> Option<SessionId> {
        let ok = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| SessionId(s.to_string()))
    }

    /// The id from a request's `Cookie` header, if it has a well-formed one.
    pub fn from_headers(headers: &HeaderMap) -> Option<SessionId> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find_map(SessionId::parse)
    }

    /// The `Set-Cookie` value that gives a browser this id.
    pub fn cookie(&self) -> HeaderValue {
        let v = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", self.0);
        HeaderValue::from_str(&v).expect("hex is a valid header value")
    }

    /// A short prefix for the session's container names in the runtime (not the secret id:
    /// container names are visible to the host's `isolab ps`).
    pub fn tag(&self) -> String {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).expect("the kernel's random source");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a connection goes.
pub enum Entry {
    /// The browser's session is alive: hand it the socket.
    Existing(mpsc::Sender<WebSocket>),
    /// A new session: run it, reading later connections from this receiver.
    New(mpsc::Receiver<WebSocket>),
}

#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<SessionId, mpsc::Sender<WebSocket>>>,
}

impl Registry {
    /// Attach to the live session with this id, or register a new one under it.
    pub fn entry(&self, id: &SessionId) -> Entry {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = live.get(id).filter(|tx| !tx.is_closed()) {
            return Entry::Existing(tx.clone());
        }
        let (tx, rx) = mpsc::channel(1);
        live.insert(id.clone(), tx);
        Entry::New(rx)
    }

    /// Whether a session with this id is running (a reload or a reconnect reattaches to it).
    pub fn is_live(&self, id: &SessionId) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(id).is_some_and(|tx| !tx.is_closed())
    }

    /// How many sessions are running.
    pub fn count(&self) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.values().filter(|tx| !tx.is_closed()).count()
    }

    pub fn remove(&self, id: &SessionId) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_comes_from_its_cookie_only_when_well_formed() {
        let id = SessionId::random();
        let mut h = HeaderMap::new();
        let cookie = format!("theme=dark; {COOKIE}={}; x=y", id.0);
        h.insert(header::COOKIE, cookie.parse().unwrap());
        assert_eq!(SessionId::from_headers(&h), Some(id.clone()));
        let mut bad = HeaderMap::new();
        bad.insert(
            header::COOKIE,
            format!("{COOKIE}=../../etc").parse().unwrap(),
        );
        assert_eq!(SessionId::from_headers(&bad), None);
        let set = id.cookie();
        let set = set.to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
    }

    #[tokio::test]
    async fn a_second_connection_reaches_the_live_session() {
        let reg = Registry::default();
        let id = SessionId::random();
        let Entry::New(rx) = reg.entry(&id) else {
            panic!("first is new")
        };
        assert!(matches!(reg.entry(&id), Entry::Existing(_)));
        drop(rx);
        assert!(
            matches!(reg.entry(&id), Entry::New(_)),
            "a closed session is replaced"
        );
    }
}
