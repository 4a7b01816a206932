//! The lesson followed, beside the terminals (`#lesson-panel`): its title, a progress bar, its
//! introduction, and its steps. Each step (`.step[data-step=N]`, N from 0) shows its title;
//! the current one is highlighted and open, with its text, its check in words, a "Hint"
//! toggle, a "Show me" button (`lesson_solve`) and why its check fails now. Passed steps are
//! green, those passed after "Show me" marked apart. The server renders the introduction,
//! steps and hints from the lesson's Markdown: they are inserted as HTML.

use isolab_shared::protocol::ClientMsg;
use yew::prelude::*;

use crate::app::{use_session, Session};
use crate::components::progress_bar;
use crate::lessons::{segments, StepRow, StepStatus};
use crate::state::{Action, Conn, Origin};

#[function_component]
pub fn LessonPanel() -> Html {
    let session = use_session();
    let state = &session.state;
    let lessons = &state.lessons;
    let Some(active) = &lessons.active else {
        return html! {};
    };
    let open = state.conn == Conn::Open;

    let steps: Html = lessons
        .steps()
        .into_iter()
        .map(|row| step(&session, row, open, lessons.solving))
        .collect();
    let bar = progress_bar(
        &segments(&active.progress, active.total()),
        Some("lesson-progress"),
        "lesson-progress",
    );
    let error = lessons.error.as_ref().map(|p| {
        html! {
            <p id="lesson-error" class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p>
        }
    });

    html! {
        <aside id="lesson-panel" class="lesson-panel" aria-label="the lesson"
            data-lesson={active.info.name.clone()} data-finished={active.finished().to_string()}>
            <header>
                <h2 class="lesson-title">{ &active.info.title }</h2>
                <div class="lesson-progress-row">
                    { bar }
                    <span class="progress-text">{ format!("{} / {}", active.done(), active.total()) }</span>
                </div>
            </header>
            if active.finished() {
                <p id="lesson-done" class="lesson-done">{ "Every step passed: lesson complete." }</p>
            }
            { error }
            <div class="lesson-intro">{ raw(&active.info.intro_html) }</div>
            <ol class="steps">{ steps }</ol>
        </aside>
    }
}

/// One step of the list.
fn step(session: &Session, row: StepRow<'_>, connected: bool, solving: Option<u32>) -> Html {
    let index = row.index;
    let status = row.status;
    let toggle = {
        let session = session.clone();
        Callback::from(move |_| session.dispatch(Action::ToggleStep(index)))
    };
    let toggle_hint = {
        let session = session.clone();
        Callback::from(move |_| session.dispatch(Action::ToggleHint(index)))
    };
    let show_me = {
        let link = session.link.clone();
        Callback::from(move |_| {
            link.request(Origin::LessonSolve(index), |reference| {
                ClientMsg::LessonSolve {
                    reference,
                    step: index,
                }
            });
        })
    };
    let mark = match status {
        StepStatus::Passed => "✓",
        StepStatus::Solved => "✓",
        StepStatus::Current => "▸",
        StepStatus::Pending => "○",
    };
    let mark_title = match status {
        StepStatus::Passed => "passed",
        StepStatus::Solved => "passed after \"Show me\"",
        StepStatus::Current => "the step checked now",
        StepStatus::Pending => "not reached yet",
    };
    let current = status == StepStatus::Current;
    let solving_this = solving == Some(index);
    let last_check = row.last_check.map(|why| {
        html! {
            <div class="last-check" role="status">
                <span class="hint">{ "not yet: " }</span><pre>{ why }</pre>
            </div>
        }
    });
    let body = row.open.then(|| {
        let show_me_button = (!status.passed()).then(|| {
            html! {
                <button class="show-me" onclick={show_me} disabled={!connected || !current || solving.is_some()}
                    title="runs what the step asks for, for you (the step is then marked as shown)">
                    { if solving_this { "showing…" } else { "Show me" } }
                </button>
            }
        });
        html! {
            <div class="step-content">
                <div class="step-body">{ raw(&row.info.html) }</div>
                <p class="step-check"><span class="hint">{ "check: " }</span><code>{ &row.info.check }</code></p>
                <div class="step-actions">
                    if !row.info.hint_html.is_empty() {
                        <button class={classes!("hint-toggle", "toggle", row.hint_open.then_some("on"))}
                            aria-pressed={row.hint_open.to_string()} onclick={toggle_hint}>{ "Hint" }</button>
                    }
                    { show_me_button }
                </div>
                if row.hint_open {
                    <div class="step-hint">{ raw(&row.info.hint_html) }</div>
                }
            </div>
        }
    });

    html! {
        <li key={index.to_string()} class={classes!("step", status.id(), row.open.then_some("open"))}
            data-step={index.to_string()} data-status={status.id()}
            data-passed={status.passed().to_string()}
            data-solved={(status == StepStatus::Solved).to_string()}
            data-current={current.to_string()}>
            <button class="step-head" onclick={toggle} aria-expanded={row.open.to_string()}>
                <span class="step-mark" title={mark_title}>{ mark }</span>
                <span class="step-number">{ format!("{}.", index + 1) }</span>
                <span class="step-title">{ &row.info.title }</span>
            </button>
            { last_check }
            { body }
        </li>
    }
}

/// Server-rendered HTML (from the lesson's Markdown, raw HTML in it escaped by the server).
fn raw(html: &str) -> Html {
    Html::from_html_unchecked(AttrValue::from(html.to_string()))
}
