//! The namespace matrix, one for the session: a row per namespace kind, a column for the host
//! and for each running container. A cell shows its namespace's inode (short) on a colour of
//! that inode's own, so cells that share a namespace look the same; its tooltip says who shares
//! it.

use yew::prelude::*;

use crate::app::use_session;
use crate::view::{colour, format, matrix};

#[function_component]
pub fn NsMatrix() -> Html {
    let session = use_session();
    let state = &session.state;
    let views = &state.views;

    // (data-target, heading, namespaces)
    let mut columns = vec![(
        "host".to_string(),
        "host".to_string(),
        views.host.latest.namespaces.as_deref(),
    )];
    for name in state.running_names() {
        let namespaces = views
            .container(&name)
            .and_then(|v| v.latest.namespaces.as_deref());
        columns.push((format!("container:{name}"), name, namespaces));
    }
    let lists: Vec<_> = columns.iter().map(|(_, _, ns)| *ns).collect();
    let rows = matrix::rows(&lists);

    let heads: Html = columns
        .iter()
        .map(|(target, name, _)| html! { <th scope="col" data-target={target.clone()}>{ name }</th> })
        .collect();
    let body: Html = rows
        .iter()
        .map(|row| {
            let cells: Html = row
                .cells
                .iter()
                .zip(&columns)
                .map(|(cell, (target, _, _))| match cell {
                    Some(cell) => html! {
                        <td class={classes!("ns-cell", (!cell.shared_with.is_empty()).then_some("shared"))}
                            data-target={target.clone()} data-inode={cell.inode.to_string()}
                            style={format!("background-color: {}", colour::css(cell.hue))}
                            title={cell.tooltip(row.kind)}>
                            { format::short_inode(cell.inode) }
                        </td>
                    },
                    None => html! {
                        <td class="ns-cell unknown" data-target={target.clone()} title="not known yet">{ "·" }</td>
                    },
                })
                .collect();
            html! { <tr data-kind={row.kind}><th scope="row">{ row.kind }</th>{ cells }</tr> }
        })
        .collect();

    html! {
        <section class="ns-matrix" aria-label="namespace matrix">
            <h2>{ "namespaces" }</h2>
            <table>
                <thead><tr><th></th>{ heads }</tr></thead>
                <tbody>{ body }</tbody>
            </table>
            <p class="legend">{ "Same colour, same namespace (its inode). Hover a cell to see who shares it." }</p>
        </section>
    }
}
