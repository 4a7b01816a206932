//! A process tree: children indented under their parent, with the pid inside the target's pid
//! namespace next to the host's, the user inside and on the host, and, for a process of
//! another container (a shared pid namespace), that container's name. A plain function (see
//! `sparkline.rs` for why).

use isolab_shared::protocol::view::ProcessView;
use yew::prelude::*;

use crate::view::tree::tree;

/// `host`: the host's column, where the pid inside is the host's (one pid column).
pub fn process_tree(list: &[ProcessView], host: bool) -> Html {
    let rows: Html = tree(list)
        .into_iter()
        .map(|(depth, p)| {
            let user = if p.uid_inside == p.uid_host {
                p.uid_inside.to_string()
            } else {
                format!("{} → {}", p.uid_inside, p.uid_host)
            };
            let indent = format!("padding-left: {}px", 4 + 14 * depth);
            let other = p
                .container
                .as_ref()
                .map(|c| html! { <span class="proc-container">{ c }</span> });
            html! {
                <tr data-pid={p.pid.to_string()}>
                    if !host {
                        <td class="num">{ p.pid_inside }</td>
                    }
                    <td class="num host-pid">{ p.pid }</td>
                    <td class="user" title="uid inside → on the host">{ user }</td>
                    <td class="cmd" style={indent}><code>{ &p.cmd }</code>{ other }</td>
                </tr>
            }
        })
        .collect();
    html! {
        <table class="procs">
            <thead>
                <tr>
                    if !host {
                        <th title="as the container numbers it">{ "PID" }</th>
                    }
                    <th title="as the host numbers it">{ "host PID" }</th>
                    <th>{ "user" }</th>
                    <th>{ "command" }</th>
                </tr>
            </thead>
            <tbody>{ rows }</tbody>
        </table>
    }
}
