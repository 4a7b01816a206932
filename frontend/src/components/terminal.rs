//! One terminal: an xterm.js instance for a handle. Keystrokes go out as input frames; its
//! size follows its box (a `ResizeObserver` runs the fit addon, and a changed size is sent as
//! `resize`); output reaches it through `screens.rs`. Once its process ended it shows how, stops
//! sending, and can be closed. Its header carries the container's live hostname, which flashes
//! when it changes.
//!
//! A read-only terminal (an attendee's, watched by the trainer: [`TerminalMode::ReadOnly`])
//! takes no keystrokes and sends neither input nor its size; what it draws is still
//! acknowledged, as every terminal's output is (`screens.rs`).
//!
//! No key handler of our own: xterm.js's selection, the browser's paste (Ctrl+Shift+V,
//! right-click → Paste) and copy (right-click → Copy) work as they do by default.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use isolab_shared::protocol::{ClientMsg, Handle};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, ResizeObserver};
use yew::prelude::*;

use crate::app::{use_session, Link};
use crate::bindings::{terminal_options, XtermDisposable, XtermFitAddon, XtermTerminal};
use crate::spectate::TerminalMode;
use crate::state::{Action, Exit};

#[derive(Properties, PartialEq)]
pub struct TerminalProps {
    pub handle: Handle,
    pub title: AttrValue,
    pub exit: Option<Exit>,
    /// The container's hostname, live from its UTS namespace (once its view came).
    #[prop_or_default]
    pub hostname: Option<AttrValue>,
    /// The view update that last changed the hostname: each new value flashes the badge.
    #[prop_or_default]
    pub flash: Option<u32>,
    /// Someone else's terminal, watched: nothing typed or resized goes out.
    #[prop_or_default]
    pub read_only: bool,
    /// A close button in the header, at any time (a watched terminal's); otherwise an ended
    /// process's terminal is closed from the state.
    #[prop_or_default]
    pub on_close: Option<Callback<MouseEvent>>,
}

#[function_component]
pub fn TerminalPane(props: &TerminalProps) -> Html {
    let session = use_session();
    let host = use_node_ref();
    // Read by the terminal's callbacks: nothing is sent for an ended process.
    let alive = use_mut_ref(|| true);
    *alive.borrow_mut() = props.exit.is_none();
    let mode = if props.read_only {
        TerminalMode::ReadOnly
    } else {
        TerminalMode::Interactive
    };
    {
        let link = session.link.clone();
        let host = host.clone();
        let alive = alive.clone();
        use_effect_with((props.handle, mode), move |&(handle, mode)| {
            let mounted = Mounted::new(link, &host, handle, mode, alive);
            move || drop(mounted)
        });
    }

    let status = props.exit.as_ref().map(|exit| {
        html! {
            <span class={classes!("badge", if exit.success() { "done" } else { "failed" })}>
                { exit.describe() }
            </span>
        }
    });
    let close = match (&props.on_close, &props.exit) {
        (Some(on_close), _) => Some(html! {
            <button class="link pane-close" onclick={on_close.clone()} title="close this terminal">{ "×" }</button>
        }),
        (None, Some(_)) => {
            let handle = props.handle;
            let session = session.clone();
            let close = Callback::from(move |_| session.dispatch(Action::ClosePane(handle)));
            Some(html! {
                <button class="link pane-close" onclick={close} title="close this terminal">{ "×" }</button>
            })
        }
        (None, None) => None,
    };
    let read_only = props
        .read_only
        .then(|| html! { <span class="badge read-only" title="watched: typing here does nothing">{ "read-only" }</span> });

    // Two animations with the same frames: switching between them restarts the flash.
    let flash = props
        .flash
        .map(|n| if n % 2 == 0 { "flash-a" } else { "flash-b" });
    let badge = props.hostname.as_ref().map(|name| {
        html! {
            <span class={classes!("hostname-badge", flash)}
                title="the hostname, live from the container's UTS namespace">{ name }</span>
        }
    });

    html! {
        <section class={classes!("pane", props.exit.is_some().then_some("ended"), props.read_only.then_some("read-only"))}
            data-handle={props.handle.to_string()}>
            <header class="pane-head">
                <span class="pane-title">{ &props.title }</span>
                { badge }
                { read_only }
                { status }
                { close }
            </header>
            <div class="xterm-host" ref={host}></div>
        </section>
    }
}

/// A terminal on the page and what it holds on to; dropping it takes it all down.
struct Mounted {
    link: Rc<Link>,
    handle: Handle,
    token: u64,
    term: XtermTerminal,
    observer: ResizeObserver,
    /// Keystrokes are listened to only in an interactive terminal.
    keystrokes: Option<Keystrokes>,
    _on_resize: Closure<dyn FnMut()>,
}

impl Mounted {
    fn new(
        link: Rc<Link>,
        host: &NodeRef,
        handle: Handle,
        mode: TerminalMode,
        alive: Rc<RefCell<bool>>,
    ) -> Option<Mounted> {
        let element = host.cast::<HtmlElement>()?;
        let term = XtermTerminal::new(&terminal_options(!mode.sends_input()));
        let fit = XtermFitAddon::new();
        term.load_addon(&fit);
        term.open(&element);

        let keystrokes = mode.sends_input().then(|| {
            let link = Rc::downgrade(&link);
            let alive = alive.clone();
            let listener = Closure::<dyn FnMut(String)>::new(move |text: String| {
                if let (true, Some(link)) = (*alive.borrow(), link.upgrade()) {
                    link.input(handle, text.as_bytes());
                }
            });
            Keystrokes {
                subscription: term.on_data(&listener),
                _listener: listener,
            }
        });

        // Fit to the box; tell the server only when rows or columns really changed.
        let refit = {
            let link = Rc::downgrade(&link);
            let term = term.clone();
            let sent = Cell::new((0u16, 0u16));
            move || {
                fit.fit();
                let size = (term.rows(), term.cols());
                if size == sent.get() || !*alive.borrow() || !mode.sends_resize() {
                    return;
                }
                let Some(link) = link.upgrade() else { return };
                let (rows, cols) = size;
                if link.send(&ClientMsg::Resize {
                    reference: None,
                    handle,
                    rows,
                    cols,
                }) {
                    sent.set(size);
                }
            }
        };
        refit();
        let on_resize = Closure::<dyn FnMut()>::new(refit);
        let observer = ResizeObserver::new(on_resize.as_ref().unchecked_ref()).ok()?;
        observer.observe(&element);

        let token = link.screens.attach(handle, term.clone());
        if mode.sends_input() {
            term.focus();
        }
        Some(Mounted {
            link,
            handle,
            token,
            term,
            observer,
            keystrokes,
            _on_resize: on_resize,
        })
    }
}

/// What typing into a terminal holds on to: xterm.js's subscription and our listener.
struct Keystrokes {
    subscription: XtermDisposable,
    _listener: Closure<dyn FnMut(String)>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.observer.disconnect();
        if let Some(keystrokes) = &self.keystrokes {
            keystrokes.subscription.dispose();
        }
        self.link.screens.detach(self.handle, self.token);
        self.term.dispose();
    }
}
