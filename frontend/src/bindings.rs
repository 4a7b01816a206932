//! All JavaScript interop: xterm.js and its fit addon, loaded as globals by `index.html`
//! (`node_modules/@xterm/xterm/lib/xterm.js` sets `Terminal`, `addon-fit.js` sets
//! `FitAddon.FitAddon`).
//!
//! The Rust names differ from the JS ones on purpose: wasm-bindgen refuses a type named like
//! its own `js_namespace` (`FitAddon.FitAddon`), so the types are `Xterm*` throughout.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// An xterm.js terminal (`new Terminal(options)`).
    #[wasm_bindgen(js_name = Terminal)]
    #[derive(Clone)]
    pub type XtermTerminal;

    #[wasm_bindgen(constructor, js_class = "Terminal")]
    pub fn new(options: &JsValue) -> XtermTerminal;

    /// Renders the terminal into `parent`.
    #[wasm_bindgen(method)]
    pub fn open(this: &XtermTerminal, parent: &web_sys::HtmlElement);

    #[wasm_bindgen(method, js_name = loadAddon)]
    pub fn load_addon(this: &XtermTerminal, addon: &XtermFitAddon);

    /// Queues bytes (decoded as UTF-8 by the terminal, across calls); `done` runs once they
    /// are on screen. `data` must be a copy: xterm.js keeps it until then.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &XtermTerminal, data: &js_sys::Uint8Array, done: &JsValue);

    /// Text typed or pasted into the terminal.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &XtermTerminal, listener: &Closure<dyn FnMut(String)>) -> XtermDisposable;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &XtermTerminal) -> u16;

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &XtermTerminal) -> u16;

    #[wasm_bindgen(method)]
    pub fn focus(this: &XtermTerminal);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &XtermTerminal);

    /// What `onData` returns (`IDisposable`).
    pub type XtermDisposable;

    #[wasm_bindgen(method, js_name = dispose)]
    pub fn dispose(this: &XtermDisposable);

    /// `FitAddon.FitAddon`: sizes a terminal's rows and columns to its element.
    #[wasm_bindgen(js_namespace = FitAddon, js_name = FitAddon)]
    pub type XtermFitAddon;

    #[wasm_bindgen(constructor, js_namespace = FitAddon, js_class = "FitAddon")]
    pub fn new() -> XtermFitAddon;

    #[wasm_bindgen(method)]
    pub fn fit(this: &XtermFitAddon);
}

/// The terminal look: dark, matching `style.css`. A read-only terminal (an attendee's, watched
/// by the trainer) takes no keyboard input (`disableStdin`) and has a still cursor.
pub fn terminal_options(read_only: bool) -> JsValue {
    let options = look();
    if read_only {
        for (key, value) in [("disableStdin", true), ("cursorBlink", false)] {
            let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
        }
    }
    options
}

fn look() -> JsValue {
    js_sys::JSON::parse(
        r##"{
            "cursorBlink": true,
            "fontFamily": "'DejaVu Sans Mono', 'Menlo', 'Consolas', monospace",
            "fontSize": 14,
            "scrollback": 5000,
            "theme": {
                "background": "#0b0f14",
                "foreground": "#d6deeb",
                "cursor": "#7fdbca",
                "selectionBackground": "#2d4f67"
            }
        }"##,
    )
    .expect("valid JSON")
}
