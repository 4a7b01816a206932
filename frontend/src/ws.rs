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
/// opened from a workshop's join link says so (`/ws?join=CODE&node=NAME`): a classroom behind
/// one address is not held to the server's sessions-per-address cap, and a balancer takes it
/// to the workshop's node.
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
    match (
        crate::route::join_code(&search),
        crate::route::node_param(&search),
    ) {
        (Some(code), Some(node)) => format!("{scheme}://{host}/ws?join={code}&node={node}"),
        (Some(code), None) => format!("{scheme}://{host}/ws?join={code}"),
        (None, _) => format!("{scheme}://{host}/ws"),
    }
}

impl Socket {
    /// Starts connecting; `on_event` hears everything that follows, ending with `Closed`.
    pub fn connect(url: &str, on_event: impl Fn(Event) + 'static) -> Result<Socket, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = std::rc::Rc::new(on_event);

        let report = on_event.clone();
        let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| report(Event::Open));
        let report = on_event.clone();
        let on_message =
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| report(decode(&e)));
        let report = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_| report(Event::Closed));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends a control message; false if the socket is not open.
    pub fn send(&self, msg: &ClientMsg) -> bool {
        let Ok(text) = serde_json::to_string(msg) else {
            return false;
        };
        self.is_open() && self.ws.send_with_str(&text).is_ok()
    }

    /// Sends bytes typed into a terminal.
    pub fn input(&self, handle: Handle, data: &[u8]) -> bool {
        let frame = Frame::new(FrameKind::Input, handle, data).encode();
        self.is_open() && self.ws.send_with_u8_array(&frame).is_ok()
    }

    fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

fn decode(e: &MessageEvent) -> Event {
    let data = e.data();
    if let Some(text) = data.as_string() {
        return match serde_json::from_str::<ServerMsg>(&text) {
            Ok(msg) => Event::Message(Box::new(msg)),
            Err(err) => Event::Garbled(format!("unreadable message from the server: {err}")),
        };
    }
    let Ok(buffer) = data.dyn_into::<js_sys::ArrayBuffer>() else {
        return Event::Garbled("a frame that is neither text nor binary".to_string());
    };
    let mut bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    let handle = match Frame::decode(&bytes) {
        Ok(frame) if frame.kind != FrameKind::Input => frame.handle,
        Ok(_) => return Event::Garbled("the server sent an input frame".to_string()),
        Err(err) => return Event::Garbled(err.to_string()),
    };
    bytes.drain(..FRAME_HEADER);
    Event::Output {
        handle,
        data: bytes,
    }
}
