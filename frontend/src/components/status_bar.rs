//! The top bar: the connection's state (with a reconnect button once closed), how many
//! containers the session may still start, the terminal layout, and any notice.

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
    let usage = state.limits.as_ref().map(|limits| {
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

    html! {
        <>
            <header class="topbar">
                <h1>{ "isolab" }</h1>
                <span class={classes!("conn", state.conn.label())} data-conn={state.conn.label()}>
                    { state.conn.label() }
                </span>
                if state.conn == Conn::Closed {
                    <button onclick={reconnect}>{ "reconnect now" }</button>
                    <span class="hint">{ "retrying automatically" }</span>
                }
                <span class="spacer" />
                { usage }
                <span class="columns">{ "layout " }{ columns(1) }{ columns(2) }</span>
            </header>
            { notice }
        </>
    }
}
