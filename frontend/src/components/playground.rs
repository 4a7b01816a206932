//! The learner's page: the form and the container cards on the left; the lesson bar, presets,
//! images, the session's namespaces, its network and the terminals (each container's above
//! its live view) in the middle; the lesson followed, if any, on the right. An attendee who
//! opened a join link and has not joined yet sees the join form alone.

use yew::prelude::*;

use crate::app::use_session;
use crate::components::{
    ContainerCard, ContainerView, HostCard, ImagesPanel, JoinForm, LessonBar, LessonPanel,
    NetworkPanel, NsMatrix, PresetBar, SpecForm, TerminalPane,
};
use crate::route::Route;

#[function_component]
pub fn Playground() -> Html {
    let session = use_session();
    let state = &session.state;

    let joining = matches!(state.route, Route::Join { .. }) && state.attendance.joined.is_none();
    if joining {
        // Until the first `hello`, the session may already be in the workshop (a reload).
        let body = if state.session == 0 {
            html! { <p class="hint">{ "connecting…" }</p> }
        } else {
            html! { <JoinForm /> }
        };
        return html! { <main class="join-page">{ body }</main> };
    }

    let cards: Html = state
        .cards
        .iter()
        .map(|card| html! { <ContainerCard key={card.info.id.clone()} card={card.clone()} /> })
        .collect();
    // One stack per container: its terminals, then its live view.
    let stacks: Html = state
        .cards
        .iter()
        .filter(|card| state.panes.iter().any(|p| p.container == card.info.id))
        .map(|card| {
            let info = &card.info;
            let live = state.views.container(&info.name);
            let hostname = live
                .and_then(|v| v.hostname())
                .map(|h| AttrValue::from(h.to_string()));
            let flash = live.and_then(|v| v.hostname_changed_at);
            let panes: Html = state
                .panes
                .iter()
                .filter(|p| p.container == info.id)
                .map(|pane| {
                    html! {
                        <TerminalPane key={pane.key(state.session)} handle={pane.handle}
                            title={pane.title.clone()} exit={pane.exit.clone()}
                            hostname={hostname.clone()} {flash} />
                    }
                })
                .collect();
            html! {
                <div class="stack" key={info.id.clone()} data-container={info.name.clone()}>
                    { panes }
                    if card.running() {
                        <ContainerView name={info.name.clone()} view={live.cloned()} />
                    }
                </div>
            }
        })
        .collect();
    let grid = classes!("terminals", format!("cols-{}", state.columns));
    let show_lesson_bar = !state.lessons.list.is_empty()
        || state.attendance.joined.is_some()
        || state.lessons.active.is_some();

    html! {
        <div class="layout">
            <aside class="sidebar">
                <SpecForm />
                <section class="cards" aria-label="containers">{ cards }</section>
            </aside>
            <main class="workspace">
                if show_lesson_bar {
                    <LessonBar />
                }
                <PresetBar />
                <ImagesPanel />
                <section class="session-view" aria-label="the session's namespaces">
                    <NsMatrix />
                    <HostCard />
                </section>
                <NetworkPanel />
                <div class={grid}>
                    if state.panes.is_empty() {
                        <p class="empty">
                            { "Create a container (or pick a preset or a lesson): its terminal appears here, above its live view." }
                        </p>
                    } else {
                        { stacks }
                    }
                </div>
            </main>
            if state.lessons.active.is_some() {
                <LessonPanel />
            }
        </div>
    }
}
