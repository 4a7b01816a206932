//! Where terminal output goes: each handle's xterm.js instance, once its component has
//! mounted. Bytes that arrive earlier (a `created` reply is followed at once by output, before
//! Yew renders the terminal) wait here and are written when it attaches.
//!
//! Flow control: a handle's bytes are acknowledged only once xterm.js has put them on screen
//! (its `write` callback), so a flood (`yes`) is paced by the browser, not by the network.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use isolab_shared::protocol::Handle;
use wasm_bindgen::closure::Closure;

use crate::bindings::XtermTerminal;

/// Called with (handle, bytes) when bytes are on screen.
pub type Ack = Rc<dyn Fn(Handle, u64)>;

enum Slot {
    /// No terminal yet: output waits.
    Waiting(Vec<u8>),
    /// Writing to this terminal; `token` tells attachments apart.
    Attached { term: XtermTerminal, token: u64 },
}

pub struct Screens {
    slots: RefCell<HashMap<Handle, Slot>>,
    next_token: Cell<u64>,
    ack: Ack,
}

impl Screens {
    pub fn new(ack: Ack) -> Screens {
        Screens {
            slots: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            ack,
        }
    }

    /// A terminal for `handle` is on the page: write what waited, then everything that comes.
    /// Returns the token to detach with.
    pub fn attach(&self, handle: Handle, term: XtermTerminal) -> u64 {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let previous = self
            .slots
            .borrow_mut()
            .insert(handle, Slot::Attached { term, token });
        if let Some(Slot::Waiting(data)) = previous {
            if !data.is_empty() {
                self.output(handle, data);
            }
        }
        token
    }

    /// The terminal left the page (only if it is still the one attached with `token`).
    pub fn detach(&self, handle: Handle, token: u64) {
        let mut slots = self.slots.borrow_mut();
        if matches!(slots.get(&handle), Some(Slot::Attached { token: t, .. }) if *t == token) {
            slots.remove(&handle);
        }
    }

    /// A new connection: its handles are new ones. (The old terminals' components still
    /// detach theirs; their tokens no longer match anything.)
    pub fn clear(&self) {
        self.slots.borrow_mut().clear();
    }

    /// Output for `handle`.
    pub fn output(&self, handle: Handle, data: Vec<u8>) {
        let mut slots = self.slots.borrow_mut();
        match slots
            .entry(handle)
            .or_insert_with(|| Slot::Waiting(Vec::new()))
        {
            Slot::Waiting(buffer) => buffer.extend_from_slice(&data),
            Slot::Attached { term, .. } => {
                let bytes = data.len() as u64;
                let ack = self.ack.clone();
                let done = Closure::once_into_js(move || ack(handle, bytes));
                term.write_bytes(&js_sys::Uint8Array::from(data.as_slice()), &done);
            }
        }
    }
}
