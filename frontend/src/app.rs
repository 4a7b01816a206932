//! The page's root. [`Link`] is the one owner of the socket: it turns socket events into state
//! actions (control messages) or screen writes (terminal bytes), reconnects after a drop, and
//! numbers requests so their replies find their way back. It also sends what messages call
//! for: the `watch`es of the live view (`view::watches_for`), the `images` and `lessons` lists
//! on each `hello`, and a running preset's next request (`presets::Runner`). It refuses to send
//! anything but acknowledgements for a terminal watched read-only (`spectate::Guard`).
//! Components reach it, and the state, through the [`Session`] context. [`App`] draws the page
//! the address asks for (`route.rs`): the playground (and the join form) or the trainer's.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::{Interval, Timeout};
use isolab_shared::protocol::{ClientMsg, Handle, Ref, ServerMsg, ViewTarget};
use yew::prelude::*;

use crate::browser;
use crate::components::{Playground, StatusBar, TrainerPage};
use crate::presets::{Command, Preset, Runner};
use crate::route::Route;
use crate::screens::Screens;
use crate::spectate::Guard;
use crate::state::{Action, AppState, Card, Origin};
use crate::trainer::Trainer;
use crate::view;
use crate::ws::{self, Event, Socket};

/// First wait before reconnecting; doubled after each failure up to [`RETRY_MAX_MS`].
const RETRY_FIRST_MS: u32 = 1_000;
const RETRY_MAX_MS: u32 = 15_000;

/// How often the sparklines get a point.
const SAMPLE_MS: u32 = 1_000;

/// The socket owner.
pub struct Link {
    socket: RefCell<Option<Socket>>,
    pub screens: Screens,
    dispatch: UseReducerDispatcher<AppState>,
    next_ref: Cell<Ref>,
    retry: RefCell<Option<Timeout>>,
    retry_ms: Cell<u32>,
    /// The preset being set up, if one is.
    preset: RefCell<Option<Runner>>,
    /// The trainer's page: no live view or images to ask for.
    trainer: bool,
    /// The terminals of this connection watched read-only.
    guard: RefCell<Guard>,
}

impl Link {
    fn new(dispatch: UseReducerDispatcher<AppState>, trainer: bool) -> Rc<Link> {
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
                preset: RefCell::new(None),
                trainer,
                guard: RefCell::new(Guard::default()),
            }
        })
    }

    /// (Re)connects now, dropping any previous connection.
    pub fn connect(self: &Rc<Self>) {
        self.retry.borrow_mut().take();
        self.socket.borrow_mut().take();
        self.screens.clear();
        self.guard.borrow_mut().reset();
        self.abort_preset("the connection was reset");
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
                let msg = *msg;
                let hello = matches!(msg, ServerMsg::Hello { .. });
                if hello {
                    self.retry_ms.set(RETRY_FIRST_MS);
                }
                self.guard.borrow_mut().on_message(&msg);
                let watches = if self.trainer {
                    Vec::new()
                } else {
                    view::watches_for(&msg)
                };
                if let Some(runner) = self.preset.borrow_mut().as_mut() {
                    runner.on_message(&msg);
                }
                // The state first, so that the requests below are pending after its reply.
                self.dispatch.dispatch(Action::Received(msg));
                for target in watches {
                    self.watch(target);
                }
                if hello {
                    if !self.trainer {
                        self.request(Origin::Images, |reference| ClientMsg::Images { reference });
                    }
                    self.request(Origin::Lessons, |reference| ClientMsg::Lessons {
                        reference,
                    });
                }
                self.drive_preset();
            }
            Event::Output { handle, data } => self.screens.output(handle, data),
            Event::Garbled(why) => self.dispatch.dispatch(Action::Notice(why)),
            Event::Closed => self.lost(),
        }
    }

    /// The connection dropped (or never came): say so and try again later.
    fn lost(self: &Rc<Self>) {
        self.abort_preset("the connection was lost");
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

    /// Sends a request numbered so that its reply lands at `origin`; its `ref`, if sent.
    pub fn request(
        &self,
        origin: Origin,
        make: impl FnOnce(Option<Ref>) -> ClientMsg,
    ) -> Option<Ref> {
        let reference = self.next_ref.get();
        self.next_ref.set(reference + 1);
        if self.send(&make(Some(reference))) {
            self.dispatch.dispatch(Action::Sent { reference, origin });
            Some(reference)
        } else {
            self.dispatch.dispatch(Action::Notice(
                "not connected: the request was not sent".into(),
            ));
            None
        }
    }

    /// Asks for the live view of `target` (the server sends it until the container is gone).
    fn watch(&self, target: ViewTarget) {
        self.request(Origin::Watch(target.clone()), |reference| {
            ClientMsg::Watch { reference, target }
        });
    }

    /// Sets up `preset`: ended cards are dismissed, running containers removed, then the
    /// preset's containers created one by one (as their replies arrive, see `on_event`).
    pub fn run_preset(&self, preset: Preset, cards: &[Card]) {
        for card in cards.iter().filter(|c| !c.running()) {
            self.dispatch
                .dispatch(Action::Dismiss(card.info.id.clone()));
        }
        let running = cards
            .iter()
            .filter(|c| c.running())
            .map(|c| c.info.id.clone())
            .collect();
        *self.preset.borrow_mut() = Some(Runner::new(preset, running));
        self.drive_preset();
    }

    /// Sends what the running preset needs next, and shows where it is.
    fn drive_preset(&self) {
        // Out of its cell while sending: a request dispatches, and nothing may find it borrowed.
        let Some(mut runner) = self.preset.borrow_mut().take() else {
            return;
        };
        for command in runner.requests() {
            let reference = match &command {
                Command::Remove(id) => {
                    let container = id.clone();
                    self.request(Origin::Remove(id.clone()), |reference| ClientMsg::Remove {
                        reference,
                        container,
                    })
                }
                Command::Create(spec) => {
                    let spec = spec.clone();
                    self.request(Origin::Preset, |reference| ClientMsg::Create {
                        reference,
                        spec,
                    })
                }
            };
            runner.sent(&command, reference);
        }
        self.dispatch
            .dispatch(Action::Preset(Some(runner.status())));
        if !runner.finished() {
            *self.preset.borrow_mut() = Some(runner);
        }
    }

    fn abort_preset(&self, why: &str) {
        if let Some(mut runner) = self.preset.borrow_mut().take() {
            runner.abort(why);
            self.dispatch
                .dispatch(Action::Preset(Some(runner.status())));
        }
    }

    /// Sends a message that expects no reply (resize, ack); never a resize, signal or
    /// end-of-file for a terminal watched read-only.
    pub fn send(&self, msg: &ClientMsg) -> bool {
        if !self.guard.borrow().allows(msg) {
            return false;
        }
        self.socket.borrow().as_ref().is_some_and(|s| s.send(msg))
    }

    /// Sends keystrokes to a terminal (never to one watched read-only).
    pub fn input(&self, handle: Handle, data: &[u8]) {
        if !self.guard.borrow().allows_input(handle) {
            return;
        }
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
    let route = use_memo((), |_| {
        let (search, hash) = browser::address();
        Route::parse(&search, &hash)
    });
    let state = {
        let route = (*route).clone();
        use_reducer(move || {
            // The trainer's token: the address's, else the one this tab used last.
            let trainer = match &route {
                Route::Trainer { token } => Trainer::new(
                    token
                        .clone()
                        .or_else(|| browser::remembered(browser::TOKEN_KEY)),
                    browser::remembered(browser::WORKSHOP_KEY),
                ),
                _ => Trainer::default(),
            };
            AppState::new(route, trainer)
        })
    };
    let link: Rc<Link> = {
        let dispatch = state.dispatcher();
        let trainer = route.is_trainer();
        (*use_memo((), move |_| Link::new(dispatch, trainer))).clone()
    };
    {
        let link = link.clone();
        use_effect_with((), move |_| {
            link.connect();
            move || link.shutdown()
        });
    }
    {
        let dispatch = state.dispatcher();
        use_effect_with((), move |_| {
            let tick = Interval::new(SAMPLE_MS, move || dispatch.dispatch(Action::Sample));
            move || drop(tick)
        });
    }
    let session = Session {
        state: state.clone(),
        link,
    };

    html! {
        <ContextProvider<Session> context={session}>
            <StatusBar />
            if route.is_trainer() {
                <TrainerPage />
            } else {
                <Playground />
            }
        </ContextProvider<Session>>
    }
}
