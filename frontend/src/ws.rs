//! The WebSocket to the server's `/ws`, in protocol terms: text frames become [`ServerMsg`]s,
//! binary frames become terminal output ([`Frame`]); requests go out as JSON, keystrokes as
//! input frames. No Yew types here: `app.rs` decides what each event means for the page.

use isolab_shared::protocol::{ClientMsg, Frame, FrameKind, Handle, ServerMsg, FRAME_HEADER};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What the socket reports.
pub enum Event {
    Open,
    /// Boxed: a `hello` (with a lesson and a workshop) is much larger than the other events.
    Message(Box<ServerMsg>),
    /// Bytes a terminal wrote (output, or stderr of a process without a tty).
    Output {
        handle: Handle,
        data: Vec<u8>,
    },
    /// A frame that could not be read; the connection goes on.
    Garbled(String),
    Closed,
}

/// One connection. Dropping it closes the socket and silences its callbacks.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(JsValue)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// `ws://` or `wss://` to this page's host, at `/ws` (the server checks the origin). A page
/// opened from a workshop's join link says so (`/ws?join=CODE`): a classroom behind one
/// address is not held to the server's sessions-per-address cap.
pub fn endpoint() -> String {
    let location = web_sys::window().expect("a window").location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location
        .host()
        .unwrap_or_else(|_| "127.0.0.1:8080".to_string());
    let search = location.search().unwrap_or_default();
    match crate::route::join_code(&search) {
        Some(code) => format!("{scheme}://{host}/ws?join={code}"),
        None => format!("{scheme}://{host}/ws"),
    }
}
