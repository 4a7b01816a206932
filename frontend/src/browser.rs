//! What the page asks of the browser besides the socket and xterm.js: its address, the tab's
//! `sessionStorage` (the trainer's token and open workshop survive a reload, not the tab),
//! `confirm()` and the clipboard. Every call tolerates a browser that refuses (storage
//! disabled, no clipboard permission): the page then simply does not remember or copy.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

/// Where the trainer's page keeps its admin token.
pub const TOKEN_KEY: &str = "isolab.admin_token";

/// Where the trainer's page keeps the workshop whose dashboard is open.
pub const WORKSHOP_KEY: &str = "isolab.workshop";

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// `location.search` and `location.hash` (`?join=AB12CD`, `#trainer`).
pub fn address() -> (String, String) {
    let Some(location) = window().map(|w| w.location()) else {
        return (String::new(), String::new());
    };
    (
        location.search().unwrap_or_default(),
        location.hash().unwrap_or_default(),
    )
}

/// `location.origin` (`http://10.0.0.5:8080`).
pub fn origin() -> String {
    window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

fn storage() -> Option<web_sys::Storage> {
    window()?.session_storage().ok().flatten()
}

/// A value kept in the tab's `sessionStorage`.
pub fn remembered(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Keeps `value` under `key` (`None` forgets it).
pub fn remember(key: &str, value: Option<&str>) {
    let Some(storage) = storage() else { return };
    let _ = match value {
        Some(value) => storage.set_item(key, value),
        None => storage.remove_item(key),
    };
}

/// `confirm(question)`: false when the browser shows no dialog.
pub fn confirm(question: &str) -> bool {
    window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}

/// Puts `text` on the clipboard; false where the browser has no clipboard for this page
/// (`navigator.clipboard` exists only in secure contexts: HTTPS or localhost). A refusal
/// later (permissions) is silent.
pub fn copy(text: &str) -> bool {
    let Some(navigator) = window().map(|w| w.navigator()) else {
        return false;
    };
    let available = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    if !available {
        return false;
    }
    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_| {});
    let _ = navigator.clipboard().write_text(text).catch(&ignore);
    // One small closure per click, kept for the promise to call.
    ignore.forget();
    true
}
