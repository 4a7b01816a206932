//! The host, the reference column: its hostname and kernel, how many processes it runs, and
//! this session's processes as the host numbers them.

use yew::prelude::*;

use crate::app::use_session;
use crate::components::process_tree;

#[function_component]
pub fn HostCard() -> Html {
    let session = use_session();
    let host = &session.state.views.host;
    let latest = &host.latest;

    let hostname = host.hostname().unwrap_or("…").to_string();
    let kernel = latest
        .kernel
        .as_ref()
        .map_or("…".to_string(), |k| k.release.clone());
    let processes = latest.processes.as_ref();
    let counts = processes.map(|p| {
        let total = p
            .host_total
            .map_or("?".to_string(), |total| total.to_string());
        format!("{total} in all; {} of them this session's", p.list.len())
    });
    let error = host.error.as_ref().map(|e| {
        html! { <p class="error" role="alert">{ "live view unavailable: " }{ e }</p> }
    });

    html! {
        <section class="host-card" data-target="host" aria-label="the host">
            <header>
                <strong>{ "host" }</strong>
                <span class="hostname-badge host" title="the server's own hostname">{ hostname }</span>
            </header>
            { error }
            <dl>
                <dt>{ "kernel" }</dt><dd>{ kernel }{ " — one kernel for the host and every container" }</dd>
                <dt>{ "processes" }</dt><dd>{ counts.unwrap_or_else(|| "…".to_string()) }</dd>
            </dl>
            if let Some(p) = processes.filter(|p| !p.list.is_empty()) {
                <details>
                    <summary>{ "this session's processes, as the host numbers them" }</summary>
                    { process_tree(&p.list, true) }
                </details>
            }
        </section>
    }
}
