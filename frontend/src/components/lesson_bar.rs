//! The lesson bar, above the presets: a picker of the server's lessons and "Start lesson"
//! (`lesson_start`; like a preset, it removes the session's containers first), and a way to
//! join a workshop. In a workshop the lesson is fixed: only "Restart lesson" remains.

use isolab_shared::protocol::ClientMsg;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::app::{use_session, Session};
use crate::browser;
use crate::components::JoinForm;
use crate::state::{Action, Conn, Origin};

/// Sends `lesson_start` for `lesson`.
fn start(session: &Session, lesson: String) {
    session
        .link
        .request(Origin::LessonStart(lesson.clone()), |reference| {
            ClientMsg::LessonStart { reference, lesson }
        });
}

#[function_component]
pub fn LessonBar() -> Html {
    let session = use_session();
    let state = &session.state;
    let lessons = &state.lessons;
    let joining = use_state(|| false);
    let blocked = state.conn != Conn::Open || lessons.starting;

    // An error of `lesson_start` shows here until a lesson runs (then on its panel).
    let error = lessons
        .error
        .as_ref()
        .filter(|_| lessons.active.is_none())
        .map(|p| {
            html! {
                <p id="lesson-error" class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p>
            }
        });

    if let Some(lesson) = state.attendance.fixed_lesson() {
        let restart = {
            let session = session.clone();
            let lesson = lesson.to_string();
            Callback::from(move |_| {
                if browser::confirm(
                    "Restart the lesson? Your containers are removed and the lesson's are created again.",
                ) {
                    start(&session, lesson.clone());
                }
            })
        };
        let title = lessons
            .active
            .as_ref()
            .map_or(lesson, |a| a.info.title.as_str());
        return html! {
            <section class="lesson-bar" aria-label="lesson">
                <span class="hint">{ "lesson" }</span>
                <strong class="lesson-name">{ title }</strong>
                <button id="lesson-restart" onclick={restart} disabled={blocked}
                    title="removes your containers and starts the workshop's lesson again">
                    { if lessons.starting { "restarting…" } else { "Restart lesson" } }
                </button>
                { error }
            </section>
        };
    }

    let onchange = {
        let session = session.clone();
        Callback::from(move |e: Event| {
            let name = e.target_unchecked_into::<HtmlSelectElement>().value();
            session.dispatch(Action::PickLesson(name));
        })
    };
    let chosen = lessons.chosen().map(str::to_string);
    let onclick = {
        let session = session.clone();
        let chosen = chosen.clone();
        Callback::from(move |_| {
            if let Some(lesson) = chosen.clone() {
                start(&session, lesson);
            }
        })
    };
    let toggle_join = {
        let joining = joining.clone();
        Callback::from(move |_| joining.set(!*joining))
    };
    let options: Html = lessons
        .list
        .iter()
        .map(|l| {
            let selected = chosen.as_deref() == Some(l.name.as_str());
            html! {
                <option value={l.name.clone()} {selected} title={l.summary.clone()}>
                    { format!("{} ({} steps)", l.title, l.steps) }
                </option>
            }
        })
        .collect();
    let summary = lessons
        .list
        .iter()
        .find(|l| chosen.as_deref() == Some(l.name.as_str()))
        .map(|l| html! { <span class="hint lesson-summary">{ &l.summary }</span> });

    html! {
        <section class="lesson-bar" aria-label="lessons">
            <div class="lesson-picker">
                if lessons.list.is_empty() {
                    <span class="hint">{ "no lessons on this server" }</span>
                } else {
                    <label class="hint" for="lesson-select">{ "lesson" }</label>
                    <select id="lesson-select" {onchange}>{ options }</select>
                    <button id="lesson-start" class="primary" {onclick} disabled={blocked || chosen.is_none()}
                        title="removes this session's containers, then creates the lesson's">
                        { if lessons.starting { "starting…" } else { "Start lesson" } }
                    </button>
                    { summary }
                }
                <span class="spacer" />
                <button id="join-open" class={classes!("toggle", joining.then_some("on"))}
                    aria-pressed={joining.to_string()} onclick={toggle_join}>{ "join a workshop…" }</button>
            </div>
            { error }
            if *joining {
                <JoinForm />
            }
        </section>
    }
}
