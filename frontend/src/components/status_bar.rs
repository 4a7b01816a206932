//! The top bar: the connection's state (with a reconnect button once closed), the workshop
//! joined and the name joined with (`#workshop-label`) or the trainer's mark, how many
//! containers the session may still start, the terminal layout, and any notice. Under it, in
//! large letters, why the server ended the session (`#session-ended`), until dismissed.

use yew::prelude::*;

use crate::app::use_session;
use crate::state::{Action, Card, Conn};

#[function_component]
pub fn StatusBar() -> Html {
    let session = use_session();
    let state = &session.state;

    let reconnect = {
        let link = session.link.clone();
        Callback::from(move |_| link.connect())
    };
    let columns = |n: u8| {
        let session = session.clone();
        let pressed = state.columns == n;
        let onclick = Callback::from(move |_| session.dispatch(Action::SetColumns(n)));
        let label = if n == 1 {
            "one terminal per row"
        } else {
            "two terminals side by side"
        };
        html! {
            <button class={classes!("toggle", pressed.then_some("on"))} aria-pressed={pressed.to_string()}
                title={label} {onclick}>{ n }</button>
        }
    };
    let trainer = state.route.is_trainer();
    let usage = state.limits.as_ref().filter(|_| !trainer).map(|limits| {
        let running = state.cards.iter().filter(|c| Card::running(c)).count();
        html! { <span class="usage">{ format!("{running} / {} containers", limits.max_containers) }</span> }
    });
    let notice = state.notice.as_ref().map(|text| {
        let session = session.clone();
        let onclick = Callback::from(move |_| session.dispatch(Action::ClearNotice));
        html! {
            <div class="notice" role="alert">
                <span>{ text }</span>
                <button class="link" {onclick} title="dismiss">{ "×" }</button>
            </div>
        }
    });

    let ended = state.ended.as_ref().map(|text| {
        let session = session.clone();
        let onclick = Callback::from(move |_| session.dispatch(Action::DismissEnded));
        html! {
            <div id="session-ended" class="session-ended" role="alert">
                <div>
                    <strong>{ "This session has ended." }</strong>
                    <p>{ text }</p>
                    <p class="hint">{ "Its containers were removed. The page connects again with a new, empty session." }</p>
                </div>
                <button class="link" {onclick} title="dismiss">{ "×" }</button>
            </div>
        }
    });
    let workshop = state.attendance.label().map(|label| {
        html! { <span id="workshop-label" class="workshop-label">{ label }</span> }
    });

    html! {
        <>
            <header class="topbar">
                <h1>{ "isolab" }</h1>
                if trainer {
                    <span id="trainer-badge" class="trainer-badge">{ "trainer" }</span>
                }
                <span class={classes!("conn", state.conn.label())} data-conn={state.conn.label()}>
                    { state.conn.label() }
                </span>
                if state.conn == Conn::Closed {
                    <button onclick={reconnect}>{ "reconnect now" }</button>
                    <span class="hint">{ "retrying automatically" }</span>
                }
                { workshop }
                <span class="spacer" />
                { usage }
                <span class="columns">{ "layout " }{ columns(1) }{ columns(2) }</span>
            </header>
            { ended }
            { notice }
        </>
    }
}
