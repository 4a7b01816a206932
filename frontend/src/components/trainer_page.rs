//! The trainer's page (`/?trainer`, `/#trainer`): the admin token on the left (prefilled from
//! `?admin=TOKEN`, kept in the tab's sessionStorage and re-sent after every `hello`, so a
//! reload signs in again by itself), then the workshops and the "New workshop" form; the open
//! workshop's dashboard and the attendees' terminals being watched in the middle. No
//! container form: the trainer's page runs nothing of its own.

use isolab_shared::protocol::ClientMsg;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::{use_session, Session};
use crate::browser;
use crate::components::{Spectators, WorkshopDashboard, WorkshopList};
use crate::state::{Conn, Origin};

/// Sends the admin token.
fn admin(session: &Session, token: String) {
    session
        .link
        .request(Origin::Admin(token.clone()), |reference| ClientMsg::Admin {
            reference,
            token,
        });
}

#[function_component]
pub fn TrainerPage() -> Html {
    let session = use_session();
    let state = &session.state;
    let trainer = &state.trainer;

    // After each `hello` (a load, a reload, a reconnect): sign in again and re-open the
    // dashboard, with what the tab remembers.
    {
        let session = session.clone();
        use_effect_with(state.session, move |&hello| {
            let trainer = &session.state.trainer;
            if hello > 0 && session.state.conn == Conn::Open {
                if let Some(token) = trainer.token.clone() {
                    admin(&session, token);
                    if let Some(id) = trainer.open.clone() {
                        session
                            .link
                            .request(Origin::WorkshopOpen(id.clone()), |reference| {
                                ClientMsg::WorkshopOpen { reference, id }
                            });
                    }
                }
            }
        });
    }
    // What the tab remembers: the token the server took (or is checking), the open workshop.
    use_effect_with(trainer.token.clone(), |token| {
        browser::remember(browser::TOKEN_KEY, token.as_deref())
    });
    use_effect_with(trainer.open.clone(), |open| {
        browser::remember(browser::WORKSHOP_KEY, open.as_deref())
    });

    html! {
        <div class="layout trainer-page">
            <aside class="sidebar">
                <TokenForm />
                if trainer.admitted {
                    <WorkshopList />
                }
            </aside>
            <main class="workspace">
                if trainer.admitted {
                    <WorkshopDashboard />
                    <Spectators />
                } else {
                    <p class="empty">{ "Sign in with the server's admin token to create and follow workshops." }</p>
                }
            </main>
        </div>
    }
}

/// The admin token's field (`#trainer-token`) and button (`#trainer-submit`).
#[function_component]
fn TokenForm() -> Html {
    let session = use_session();
    let state = &session.state;
    let trainer = &state.trainer;
    let token = use_state(|| trainer.token.clone().unwrap_or_default());

    let oninput = {
        let token = token.clone();
        Callback::from(move |e: InputEvent| {
            token.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onsubmit = {
        let session = session.clone();
        let token = token.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let token = token.trim().to_string();
            if !token.is_empty() {
                admin(&session, token);
            }
        })
    };
    let status = if trainer.checking {
        ("checking", "checking…")
    } else if trainer.admitted {
        ("admitted", "signed in as the trainer")
    } else {
        ("out", "not signed in")
    };
    let error = trainer.admin_error.as_ref().map(|p| {
        html! {
            <p id="trainer-error" class="error" role="alert" data-code={p.code.clone()}>
                <code>{ &p.code }</code>{ " " }{ &p.message }
            </p>
        }
    });
    let blocked = state.conn != Conn::Open || trainer.checking || token.trim().is_empty();

    html! {
        <form id="trainer-auth" class="trainer-auth" aria-label="trainer sign-in" {onsubmit} novalidate=true>
            <h2>{ "Trainer" }</h2>
            <label class={classes!("field", trainer.admin_error.is_some().then_some("invalid"))}>
                <span>{ "admin token" }</span>
                <input id="trainer-token" type="password" name="admin-token" value={(*token).clone()}
                    {oninput} autocomplete="off" spellcheck="false" />
            </label>
            <div class="submit">
                <button id="trainer-submit" type="submit" class="primary" disabled={blocked}>{ "Sign in" }</button>
                <span id="trainer-status" class={classes!("trainer-status", status.0)} data-status={status.0}>
                    { status.1 }
                </span>
            </div>
            { error }
        </form>
    }
}
