//! The attendees' terminals the trainer watches (`.spectator-terminal`), side by side: each a
//! read-only terminal titled `NAME · container`, fed by the output frames of its handle; its
//! close button sends `unspectate`.

use isolab_shared::protocol::ClientMsg;
use yew::prelude::*;

use crate::app::use_session;
use crate::components::TerminalPane;
use crate::state::{Action, Origin};

#[function_component]
pub fn Spectators() -> Html {
    let session = use_session();
    let state = &session.state;
    let list = &state.trainer.spectators.list;
    if list.is_empty() {
        return html! {};
    }
    let terminals: Html = list
        .iter()
        .map(|s| {
            let handle = s.handle;
            let close = {
                let session = session.clone();
                Callback::from(move |_: MouseEvent| {
                    session
                        .link
                        .request(Origin::Unspectate(handle), |reference| {
                            ClientMsg::Unspectate { reference, handle }
                        });
                    session.dispatch(Action::CloseSpectator(handle));
                })
            };
            html! {
                <div class="spectator-terminal" key={format!("{}-{handle}", state.session)}
                    data-handle={handle.to_string()} data-attendee={s.name.clone()}
                    data-container={s.container.clone()}>
                    <TerminalPane {handle} title={s.title()} exit={s.exit.clone()} read_only=true
                        on_close={close} />
                </div>
            }
        })
        .collect();
    let grid = classes!("terminals", "spectators", format!("cols-{}", state.columns));
    html! {
        <section class="watched" aria-label="terminals watched">
            <h3>{ "Watching (read-only)" }</h3>
            <div class={grid}>{ terminals }</div>
        </section>
    }
}
