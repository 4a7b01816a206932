//! A lesson's progress as a bar of one segment per step (passed, passed after "Show me",
//! current, not reached), with `data-done` and `data-total` for tests: the learner's panel and
//! each attendee's row on the trainer's dashboard draw it.

use yew::prelude::*;

use crate::lessons::StepStatus;

/// The bar; `id` and `class` name it where it is drawn (`#lesson-progress`,
/// `.attendee-progress`).
pub fn progress_bar(
    segments: &[StepStatus],
    id: Option<&'static str>,
    class: &'static str,
) -> Html {
    let total = segments.len();
    let done = segments.iter().filter(|s| s.passed()).count();
    let solved = segments
        .iter()
        .filter(|s| **s == StepStatus::Solved)
        .count();
    let title = match solved {
        0 => format!("{done} of {total} steps passed"),
        n => format!("{done} of {total} steps passed ({n} with \"Show me\")"),
    };
    let cells: Html = segments
        .iter()
        .enumerate()
        .map(|(i, status)| {
            html! {
                <span class={classes!("seg", status.id())} data-step={i.to_string()}></span>
            }
        })
        .collect();
    html! {
        <div {id} class={classes!("progress-bar", class)} role="progressbar"
            aria-valuemin="0" aria-valuemax={total.to_string()} aria-valuenow={done.to_string()}
            data-done={done.to_string()} data-total={total.to_string()} {title}>
            { cells }
        </div>
    }
}
