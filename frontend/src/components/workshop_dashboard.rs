//! The open workshop's dashboard (`#workshop-dashboard`), redrawn by every `workshop` message:
//! the join code in big letters (`#workshop-code`) and the join link (`#workshop-link`, with a
//! copy button), then one row per attendee (`.attendee[data-name]`): a dot for a connected
//! browser, a progress bar (`.attendee-progress[data-done][data-total]`), the current step,
//! and a "Watch" button per terminal (`.watch-button`) → `spectate`. "End workshop"
//! (`#workshop-end`, confirmed first) → `workshop_end`.

use isolab_shared::protocol::{ClientMsg, WorkshopView};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::{use_session, Session};
use crate::browser;
use crate::components::progress_bar;
use crate::state::{Conn, Origin};
use crate::trainer::{attendee_rows, join_link, AttendeeRow};

#[function_component]
pub fn WorkshopDashboard() -> Html {
    let session = use_session();
    let state = &session.state;
    let trainer = &state.trainer;
    let copied = use_state(|| None::<&'static str>);
    let link_ref = use_node_ref();

    let error = trainer.error.as_ref().map(|p| {
        html! {
            <p id="workshop-error" class="error" role="alert" data-code={p.code.clone()}>
                <code>{ &p.code }</code>{ " " }{ &p.message }
            </p>
        }
    });
    let Some(view) = trainer.open_view() else {
        let text = if trainer.open.is_some() {
            "opening the workshop…"
        } else {
            "Create a workshop, or open one from the list: its join code and its attendees appear here."
        };
        return html! {
            <>
                { error }
                <p class="empty">{ text }</p>
            </>
        };
    };
    let open = state.conn == Conn::Open && !view.ended;
    let link = join_link(&browser::origin(), view);

    let copy = {
        let copied = copied.clone();
        let link = link.clone();
        let link_ref = link_ref.clone();
        Callback::from(move |_| {
            if browser::copy(&link) {
                copied.set(Some("copied"));
            } else if let Some(input) = link_ref.cast::<HtmlInputElement>() {
                // No clipboard on a plain-HTTP page: select it for Ctrl+C.
                input.select();
                copied.set(Some("selected: press Ctrl+C to copy"));
            }
        })
    };
    let end = {
        let session = session.clone();
        let id = view.brief.id.clone();
        let title = view.brief.title.clone();
        Callback::from(move |_| {
            let question =
                format!("End the workshop \"{title}\"? Every attendee's containers are removed.");
            if browser::confirm(&question) {
                let id = id.clone();
                session
                    .link
                    .request(Origin::WorkshopEnd(id.clone()), |reference| {
                        ClientMsg::WorkshopEnd { reference, id }
                    });
            }
        })
    };
    let rows: Html = attendee_rows(view, &trainer.spectators)
        .into_iter()
        .map(|row| attendee(&session, view, row, open))
        .collect();
    let connected = view.attendees.iter().filter(|a| a.connected).count();

    html! {
        <section id="workshop-dashboard" class="dashboard" aria-label="the workshop"
            data-id={view.brief.id.clone()} data-ended={view.ended.to_string()}>
            <header class="dashboard-head">
                <h2>{ &view.brief.title }</h2>
                <span class="hint">{ format!("lesson {} · {} steps", view.brief.lesson, view.steps.len()) }</span>
                if view.ended {
                    <span class="badge failed" id="workshop-ended">{ "ended: every attendee's containers were removed" }</span>
                }
                <span class="spacer" />
                if !view.ended {
                    <button id="workshop-end" class="danger" onclick={end} disabled={!open}>{ "End workshop" }</button>
                }
            </header>
            { error }
            <div class="join-info">
                <div class="join-code-box">
                    <span class="hint">{ "join code" }</span>
                    <strong id="workshop-code" class="join-code">{ &view.brief.code }</strong>
                </div>
                <div class="join-link-box">
                    <span class="hint">{ "or open" }</span>
                    <div class="join-link-row">
                        <input id="workshop-link" class="join-link" readonly=true value={link.clone()} ref={link_ref} />
                        <button id="workshop-copy" onclick={copy}>{ "Copy" }</button>
                    </div>
                    if let Some(text) = *copied {
                        <span class="hint copied">{ text }</span>
                    }
                </div>
            </div>
            <h3 class="attendees-head">
                { format!("Attendees: {} ({connected} connected)", view.attendees.len()) }
            </h3>
            if view.attendees.is_empty() {
                <p class="hint">{ "Nobody has joined yet: share the code or the link." }</p>
            } else {
                <div class="attendees">{ rows }</div>
            }
        </section>
    }
}

/// One attendee's row.
fn attendee(session: &Session, view: &WorkshopView, row: AttendeeRow<'_>, open: bool) -> Html {
    let a = row.attendee;
    let watches: Html = row
        .watches
        .iter()
        .map(|w| {
            let onclick = {
                let link = session.link.clone();
                let workshop = view.brief.id.clone();
                let attendee = a.id.clone();
                let handle = w.handle;
                Callback::from(move |_| {
                    let origin = Origin::Spectate {
                        workshop: workshop.clone(),
                        attendee: attendee.clone(),
                        handle,
                    };
                    let (workshop, attendee) = (workshop.clone(), attendee.clone());
                    link.request(origin, |reference| ClientMsg::Spectate {
                        reference,
                        workshop,
                        attendee,
                        handle,
                    });
                })
            };
            html! {
                <button class={classes!("watch-button", w.watching.then_some("on"))}
                    data-container={w.container.clone()} data-handle={w.handle.to_string()}
                    data-attendee={a.name.clone()} disabled={!open || w.watching} {onclick}
                    title={format!("watch {}'s terminal, read-only", a.name)}>
                    { if w.watching { format!("watching {}", w.label) } else { format!("Watch {}", w.label) } }
                </button>
            }
        })
        .collect();
    let (dot, dot_title) = if a.connected {
        ("online", "connected")
    } else {
        ("offline", "not connected (reloading, or gone)")
    };

    html! {
        <div key={a.id.clone()} class={classes!("attendee", (!a.connected).then_some("away"))}
            data-name={a.name.clone()} data-id={a.id.clone()} data-connected={a.connected.to_string()}>
            <span class={classes!("dot", dot)} title={dot_title}></span>
            <span class="attendee-name">{ &a.name }</span>
            { progress_bar(&row.segments, None, "attendee-progress") }
            <span class="progress-text">{ format!("{} / {}", row.done, row.total) }</span>
            <span class="attendee-step" title="the step being checked">{ row.at.clone() }</span>
            <span class="watches">
                if row.watches.is_empty() {
                    <span class="hint">{ "no containers" }</span>
                } else {
                    { watches }
                }
            </span>
        </div>
    }
}
