//! One container: what it runs, whether it still does (or how it ended), its address on the
//! session's network and a link per published port, a `+ shell` button (exec → a new
//! terminal), `diff` (what it added, changed or deleted, listed under the card, as `docker
//! diff` prints it), remove (or dismiss once ended), and the error of its last request.

use isolab_shared::protocol::{ChangeInfo, ClientMsg};
use yew::prelude::*;

use crate::app::use_session;
use crate::network::Port;
use crate::state::{command_text, Action, Card, Conn, Origin};

#[derive(Properties, PartialEq)]
pub struct ContainerCardProps {
    pub card: Card,
}

#[function_component]
pub fn ContainerCard(props: &ContainerCardProps) -> Html {
    let session = use_session();
    let card = &props.card;
    let info = &card.info;
    let open = session.state.conn == Conn::Open;

    let exec = {
        let link = session.link.clone();
        let id = info.id.clone();
        Callback::from(move |_| {
            let container = id.clone();
            link.request(Origin::Exec(id.clone()), |reference| ClientMsg::Exec {
                reference,
                container,
                cmd: Vec::new(),
                env: Vec::new(),
            });
        })
    };
    let diff = {
        let link = session.link.clone();
        let id = info.id.clone();
        Callback::from(move |_| {
            let container = id.clone();
            link.request(Origin::Diff(id.clone()), |reference| ClientMsg::Diff {
                reference,
                container,
            });
        })
    };
    let remove = {
        let session = session.clone();
        let id = info.id.clone();
        let running = card.running();
        Callback::from(move |_| {
            if running {
                let container = id.clone();
                session
                    .link
                    .request(Origin::Remove(id.clone()), |reference| ClientMsg::Remove {
                        reference,
                        container,
                    });
            } else {
                session.dispatch(Action::Dismiss(id.clone()))
            }
        })
    };

    let status = match &card.exit {
        None => html! { <span class="badge status running">{ "running" }</span> },
        Some(exit) => html! {
            <span class={classes!("badge", "status", if exit.success() { "done" } else { "failed" })}>
                { exit.describe() }
            </span>
        },
    };
    let error = card.error.as_ref().map(|p| {
        html! { <p class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p> }
    });
    let short_id: String = info.id.chars().take(12).collect();
    let changes = card.diff.as_ref().map(|changes| {
        let session = session.clone();
        let id = info.id.clone();
        let hide = Callback::from(move |_| session.dispatch(Action::HideDiff(id.clone())));
        changes_list(changes, hide)
    });

    html! {
        <article class={classes!("card", (!card.running()).then_some("ended"))} data-name={info.name.clone()}>
            <header>
                <strong class="name">{ &info.name }</strong>
                <code class="id">{ short_id }</code>
                if !info.runtime.is_empty() {
                    <span class={classes!("badge", "runtime", info.runtime.clone())}
                        title="the OCI runtime that runs it">{ &info.runtime }</span>
                }
                { status }
            </header>
            <dl>
                <dt>{ "image" }</dt><dd>{ &info.image }</dd>
                <dt>{ "hostname" }</dt><dd>{ &info.hostname }</dd>
                <dt>{ "command" }</dt><dd><code>{ command_text(&info.cmd) }</code></dd>
                if let Some(address) = &info.address {
                    <dt>{ "address" }</dt><dd><code class="address">{ address }</code></dd>
                }
                if !info.ports.is_empty() {
                    <dt title="published on the server's loopback">{ "ports" }</dt>
                    <dd class="ports">{ ports(&info.ports) }</dd>
                }
            </dl>
            <div class="actions">
                <button class="exec" onclick={exec} disabled={!open || !card.running() || card.busy}>
                    { "+ shell" }
                </button>
                <button class="diff" onclick={diff} disabled={!open || !card.running() || card.diffing}
                    title="what this container added (A), changed (C) or deleted (D), like docker diff">
                    { if card.diffing { "diff…" } else { "diff" } }
                </button>
                <button class="remove danger" onclick={remove} disabled={card.busy || (card.running() && !open)}>
                    { if card.running() { "remove" } else { "dismiss" } }
                </button>
            </div>
            { error }
            { changes }
        </article>
    }
}

/// Published ports: a link for each TCP one (`:8080 → :80`), the text for UDP.
fn ports(list: &[String]) -> Html {
    Port::all(list)
        .into_iter()
        .map(|port| match port.link() {
            Some(href) => html! {
                <a class="port" {href} target="_blank" rel="noopener" data-port={port.host.to_string()}>
                    { port.short() }
                </a>
            },
            None => html! { <span class="port" data-port={port.host.to_string()}>{ port.short() }</span> },
        })
        .collect()
}

/// The changes under the card: `A`, `C`, `D` coloured, one path a line.
fn changes_list(changes: &[ChangeInfo], hide: Callback<MouseEvent>) -> Html {
    let summary = match changes.len() {
        0 => "no changes: the container's layer is empty".to_string(),
        1 => "1 change".to_string(),
        n => format!("{n} changes"),
    };
    let items: Html = changes
        .iter()
        .map(|c| {
            let kind = match c.kind.as_str() {
                "A" => "added",
                "C" => "changed",
                "D" => "deleted",
                _ => "other",
            };
            html! {
                <li class={classes!("change", kind)} data-kind={c.kind.clone()} data-path={c.path.clone()}>
                    <code class="kind" title={kind}>{ &c.kind }</code>{ " " }<code class="path">{ &c.path }</code>
                </li>
            }
        })
        .collect();
    html! {
        <div class="diff-result" aria-label="the container's changes">
            <header>
                <span>{ summary }</span>
                <span class="hint">{ "A added · C changed · D deleted" }</span>
                <button class="link" onclick={hide} title="hide">{ "×" }</button>
            </header>
            <ul>{ items }</ul>
        </div>
    }
}
