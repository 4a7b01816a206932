//! The trainer's workshops (`#workshop-list`, each `.workshop-item[data-id]` with an "Open"
//! button → `workshop_open`) and the "New workshop" form (`#workshop-create`: a lesson from
//! the server's list and an optional title → `workshop_create`, which opens its dashboard).

use isolab_shared::protocol::ClientMsg;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::use_session;
use crate::state::{Conn, Origin};

#[function_component]
pub fn WorkshopList() -> Html {
    let session = use_session();
    let state = &session.state;
    let trainer = &state.trainer;
    let open = state.conn == Conn::Open;

    let items: Html = trainer
        .workshops
        .iter()
        .map(|w| {
            let id = w.brief.id.clone();
            let onclick = {
                let link = session.link.clone();
                let id = id.clone();
                Callback::from(move |_| {
                    let id = id.clone();
                    link.request(Origin::WorkshopOpen(id.clone()), |reference| {
                        ClientMsg::WorkshopOpen { reference, id }
                    });
                })
            };
            let shown = trainer.open.as_deref() == Some(id.as_str());
            html! {
                <li key={id.clone()} class={classes!("workshop-item", shown.then_some("on"), w.ended.then_some("ended"))}
                    data-id={id.clone()} data-code={w.brief.code.clone()} data-ended={w.ended.to_string()}>
                    <div class="workshop-item-head">
                        <strong>{ &w.brief.title }</strong>
                        <code class="workshop-item-code">{ &w.brief.code }</code>
                    </div>
                    <div class="hint">
                        { format!("{} · {} attendee{}", w.brief.lesson, w.attendees.len(),
                            if w.attendees.len() == 1 { "" } else { "s" }) }
                        if w.ended { { " · ended" } }
                    </div>
                    <button class="workshop-open" {onclick} disabled={!open || shown}>
                        { if shown { "open" } else { "Open" } }
                    </button>
                </li>
            }
        })
        .collect();

    html! {
        <>
            <section id="workshop-list" class="workshop-list" aria-label="workshops">
                <h2>{ "Workshops" }</h2>
                if trainer.workshops.is_empty() {
                    <p class="hint">{ "None yet." }</p>
                } else {
                    <ul>{ items }</ul>
                }
            </section>
            <CreateForm />
        </>
    }
}

/// "New workshop": a lesson and an optional title.
#[function_component]
fn CreateForm() -> Html {
    let session = use_session();
    let state = &session.state;
    let trainer = &state.trainer;
    let lessons = &state.lessons.list;
    let picked = use_state(|| None::<String>);
    let title = use_state(String::new);

    let lesson = (*picked)
        .clone()
        .filter(|p| lessons.iter().any(|l| &l.name == p))
        .or_else(|| lessons.first().map(|l| l.name.clone()));
    let onchange = {
        let picked = picked.clone();
        Callback::from(move |e: Event| {
            picked.set(Some(e.target_unchecked_into::<HtmlSelectElement>().value()))
        })
    };
    let oninput = {
        let title = title.clone();
        Callback::from(move |e: InputEvent| {
            title.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onsubmit = {
        let link = session.link.clone();
        let lesson = lesson.clone();
        let title = title.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(lesson) = lesson.clone() else { return };
            let title = Some(title.trim().to_string()).filter(|t| !t.is_empty());
            link.request(Origin::WorkshopCreate, |reference| {
                ClientMsg::WorkshopCreate {
                    reference,
                    lesson,
                    title,
                }
            });
        })
    };
    let options: Html = lessons
        .iter()
        .map(|l| {
            let selected = lesson.as_deref() == Some(l.name.as_str());
            html! {
                <option value={l.name.clone()} {selected}>{ format!("{} ({} steps)", l.title, l.steps) }</option>
            }
        })
        .collect();
    let error = trainer.create_error.as_ref().map(|p| {
        html! {
            <p id="workshop-create-error" class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p>
        }
    });
    let blocked = state.conn != Conn::Open || trainer.creating || lesson.is_none();

    html! {
        <form id="workshop-create" class="workshop-create" aria-label="new workshop" {onsubmit} novalidate=true>
            <h2>{ "New workshop" }</h2>
            <label class="field">
                <span>{ "lesson" }</span>
                <select id="workshop-lesson" name="lesson" {onchange}>{ options }</select>
            </label>
            <label class="field">
                <span>{ "title (optional: the lesson's)" }</span>
                <input id="workshop-title" name="title" value={(*title).clone()} {oninput}
                    autocomplete="off" />
            </label>
            <div class="submit">
                <button id="workshop-create-submit" type="submit" class="primary" disabled={blocked}>
                    { if trainer.creating { "creating…" } else { "Create workshop" } }
                </button>
            </div>
            { error }
        </form>
    }
}
