//! The page's root. [`Link`] is the one owner of the socket: it turns socket events into state
//! actions (control messages) or screen writes (terminal bytes), reconnects after a drop, and
//! numbers requests so their replies find their way back. Components reach it, and the state,
//! through the [`Session`] context.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use isolab_shared::protocol::{ClientMsg, Handle, Ref, ServerMsg};
use yew::prelude::*;

use crate::components::{ContainerCard, SpecForm, StatusBar, TerminalPane};
use crate::screens::Screens;
use crate::state::{Action, AppState, Origin};
use crate::ws::{self, Event, Socket};

/// First wait before reconnecting; doubled after each failure up to [`RETRY_MAX_MS`].
const RETRY_FIRST_MS: u32 = 1_000;
const RETRY_MAX_MS: u32 = 15_000;

/// The socket owner.
pub struct Link {
    socket: RefCell<Option<Socket>>,
    pub screens: Screens,
    dispatch: UseReducerDispatcher<AppState>,
    next_ref: Cell<Ref>,
    retry: RefCell<Option<Timeout>>,
    retry_ms: Cell<u32>,
}

impl Link {
    fn new(dispatch: UseReducerDispatcher<AppState>) -> Rc<Link> {
        Rc::new_cyclic(|me: &Weak<Link>| {
            let me = me.clone();
            let ack = Rc::new(move |handle: Handle, bytes: u64| {
                if let Some(link) = me.upgrade() {
                    link.send(&ClientMsg::Ack { handle, bytes });
                }
            });
            Link {
                socket: RefCell::new(None),
                screens: Screens::new(ack),
                dispatch,
                next_ref: Cell::new(1),
                retry: RefCell::new(None),
                retry_ms: Cell::new(RETRY_FIRST_MS),
            }
        })
    }

    /// (Re)connects now, dropping any previous connection.
    pub fn connect(self: &Rc<Self>) {
        self.retry.borrow_mut().take();
        self.socket.borrow_mut().take();
        self.screens.clear();
        self.dispatch.dispatch(Action::Connecting);
        let me = Rc::downgrade(self);
        let socket = Socket::connect(&ws::endpoint(), move |event| {
            if let Some(link) = me.upgrade() {
                link.on_event(event);
            }
        });
        match socket {
            Ok(socket) => *self.socket.borrow_mut() = Some(socket),
            Err(_) => self.lost(),
        }
    }

    fn on_event(self: &Rc<Self>, event: Event) {
        match event {
            Event::Open => {}
            Event::Message(msg) => {
                if matches!(msg, ServerMsg::Hello { .. }) {
                    self.retry_ms.set(RETRY_FIRST_MS);
                }
                self.dispatch.dispatch(Action::Received(msg));
            }
            Event::Output { handle, data } => self.screens.output(handle, data),
            Event::Garbled(why) => self.dispatch.dispatch(Action::Notice(why)),
            Event::Closed => self.lost(),
        }
    }

    /// The connection dropped (or never came): say so and try again later.
    fn lost(self: &Rc<Self>) {
        self.dispatch.dispatch(Action::Closed);
        let wait = self.retry_ms.get();
        self.retry_ms.set((wait * 2).min(RETRY_MAX_MS));
        let me = Rc::downgrade(self);
        let timer = Timeout::new(wait, move || {
            if let Some(link) = me.upgrade() {
                link.connect();
            }
        });
        *self.retry.borrow_mut() = Some(timer);
    }

    /// Sends a request numbered so that its reply lands at `origin`.
    pub fn request(&self, origin: Origin, make: impl FnOnce(Option<Ref>) -> ClientMsg) {
        let reference = self.next_ref.get();
        self.next_ref.set(reference + 1);
        if self.send(&make(Some(reference))) {
            self.dispatch.dispatch(Action::Sent { reference, origin });
        } else {
            self.dispatch.dispatch(Action::Notice(
                "not connected: the request was not sent".into(),
            ));
        }
    }

    /// Sends a message that expects no reply (resize, ack).
    pub fn send(&self, msg: &ClientMsg) -> bool {
        self.socket.borrow().as_ref().is_some_and(|s| s.send(msg))
    }

    /// Sends keystrokes to a terminal.
    pub fn input(&self, handle: Handle, data: &[u8]) {
        if let Some(socket) = self.socket.borrow().as_ref() {
            socket.input(handle, data);
        }
    }

    fn shutdown(&self) {
        self.retry.borrow_mut().take();
        self.socket.borrow_mut().take();
    }
}

/// What components get from the context: the state to render and the link to act through.
#[derive(Clone)]
pub struct Session {
    pub state: UseReducerHandle<AppState>,
    pub link: Rc<Link>,
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        self.state == other.state && Rc::ptr_eq(&self.link, &other.link)
    }
}

impl Session {
    pub fn dispatch(&self, action: Action) {
        self.state.dispatch(action);
    }
}

/// The session context, for components under [`App`].
#[hook]
pub fn use_session() -> Session {
    use_context::<Session>().expect("components live under App's session provider")
}

#[function_component]
pub fn App() -> Html {
    let state = use_reducer(AppState::default);
    let link: Rc<Link> = {
        let dispatch = state.dispatcher();
        (*use_memo((), move |_| Link::new(dispatch))).clone()
    };
    {
        let link = link.clone();
        use_effect_with((), move |_| {
            link.connect();
            move || link.shutdown()
        });
    }
    let session = Session {
        state: state.clone(),
        link: link.clone(),
    };

    let cards: Html = state
        .cards
        .iter()
        .map(|card| html! { <ContainerCard key={card.info.id.clone()} card={card.clone()} /> })
        .collect();
    let panes: Html = state
        .panes
        .iter()
        .map(|pane| {
            html! {
                <TerminalPane key={pane.key(state.session)} handle={pane.handle}
                    title={pane.title.clone()} exit={pane.exit.clone()} />
            }
        })
        .collect();
    let grid = classes!("terminals", format!("cols-{}", state.columns));

    html! {
        <ContextProvider<Session> context={session}>
            <StatusBar />
            <div class="layout">
                <aside class="sidebar">
                    <SpecForm />
                    <section class="cards" aria-label="containers">{ cards }</section>
                </aside>
                <main class={grid}>
                    if state.panes.is_empty() {
                        <p class="empty">{ "Create a container: its terminal appears here." }</p>
                    } else {
                        { panes }
                    }
                </main>
            </div>
        </ContextProvider<Session>>
    }
}
