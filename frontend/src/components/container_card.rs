//! One container: what it runs, whether it still does (or how it ended), a `+ shell` button
//! (exec → a new terminal), remove (or dismiss once ended), and the error of its last request.

use isolab_shared::protocol::ClientMsg;
use yew::prelude::*;

use crate::app::use_session;
use crate::state::{Action, Card, Conn, Origin};

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
        None => html! { <span class="badge running">{ "running" }</span> },
        Some(exit) => html! {
            <span class={classes!("badge", if exit.success() { "done" } else { "failed" })}>
                { exit.describe() }
            </span>
        },
    };
    let error = card.error.as_ref().map(|p| {
        html! { <p class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p> }
    });
    let short_id: String = info.id.chars().take(12).collect();

    html! {
        <article class={classes!("card", (!card.running()).then_some("ended"))} data-name={info.name.clone()}>
            <header>
                <strong class="name">{ &info.name }</strong>
                <code class="id">{ short_id }</code>
                { status }
            </header>
            <dl>
                <dt>{ "image" }</dt><dd>{ &info.image }</dd>
                <dt>{ "hostname" }</dt><dd>{ &info.hostname }</dd>
                <dt>{ "command" }</dt><dd><code>{ info.cmd.join(" ") }</code></dd>
            </dl>
            <div class="actions">
                <button class="exec" onclick={exec} disabled={!open || !card.running() || card.busy}>
                    { "+ shell" }
                </button>
                <button class="remove danger" onclick={remove} disabled={card.busy || (card.running() && !open)}>
                    { if card.running() { "remove" } else { "dismiss" } }
                </button>
            </div>
            { error }
        </article>
    }
}
