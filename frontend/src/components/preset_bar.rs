//! The preset bar, above the terminals: one button per preset (`data-preset="uts"`, …), where
//! the last one run is (removing, creating, ready, failed), and its hint: what to try.

use yew::prelude::*;

use crate::app::use_session;
use crate::presets::{hint_pieces, Phase, Preset};
use crate::state::{Action, Conn};

#[function_component]
pub fn PresetBar() -> Html {
    let session = use_session();
    let state = &session.state;
    let status = state.preset.as_ref();
    let busy = status.is_some_and(|s| matches!(s.phase, Phase::Removing | Phase::Creating(_)));
    let open = state.conn == Conn::Open;

    let buttons: Html = Preset::ALL
        .into_iter()
        .map(|preset| {
            let onclick = {
                let session = session.clone();
                Callback::from(move |_| session.link.run_preset(preset, &session.state.cards))
            };
            let on = status.is_some_and(|s| s.preset == preset);
            html! {
                <button class={classes!("preset", on.then_some("on"))} data-preset={preset.id()}
                    disabled={!open || busy} title="removes this session's containers first"
                    {onclick}>{ preset.label() }</button>
            }
        })
        .collect();

    let progress = status.map(|s| {
        let (phase, text) = match &s.phase {
            Phase::Removing => (
                "removing",
                "removing this session's containers…".to_string(),
            ),
            Phase::Creating(name) => ("creating", format!("creating {name}…")),
            Phase::Ready => ("ready", "ready".to_string()),
            Phase::Failed(why) => ("failed", format!("failed: {why}")),
        };
        html! { <span class={classes!("preset-phase", phase)} data-phase={phase}>{ text }</span> }
    });
    let hint = status.map(|s| {
        let dismiss = {
            let session = session.clone();
            Callback::from(move |_| session.dispatch(Action::Preset(None)))
        };
        let lines = hint_html(s.preset.hint());
        html! {
            <div class="preset-hint" data-preset={s.preset.id()}>
                <div class="preset-hint-text">{ lines }</div>
                if !busy {
                    <button class="link" onclick={dismiss} title="dismiss">{ "×" }</button>
                }
            </div>
        }
    });

    html! {
        <section class="preset-bar" aria-label="presets">
            <div class="preset-buttons">
                <span class="hint">{ "presets" }</span>
                { buttons }
                { progress }
            </div>
            { hint }
        </section>
    }
}

/// Hint lines as paragraphs, with `backquoted` words as code (the presets' and the build
/// panel's hints).
pub fn hint_html(lines: &[&str]) -> Html {
    lines
        .iter()
        .map(|line| {
            let pieces: Html = hint_pieces(line)
                .into_iter()
                .map(|(text, code)| {
                    if code {
                        html! { <code>{ text }</code> }
                    } else {
                        html! { { text } }
                    }
                })
                .collect();
            html! { <p>{ pieces }</p> }
        })
        .collect()
}
