//! The session's network, next to the namespace matrix: a picture of it (the host with the
//! session's bridge, a veth pair per container from the bridge to the container's `eth0`,
//! addresses, published ports, egress, and the cables moved interfaces made between
//! containers), redrawn as views arrive and containers come and go; and the move control,
//! which moves an interface from one container's network namespace to another's (making a veth
//! pair or a dummy in the first when it has none by that name).

use isolab_shared::protocol::ContainerInfo;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::use_session;
use crate::network::{kind_options, MoveFields, MOVE_HINT};
use crate::state::{Conn, Origin, Problem};
use crate::view::picture::layout::{layout, Drawing, Rect, BOX_TOP, HOST_BOTTOM, PORT_LINE};
use crate::view::picture::{picture, Node, Picture};

/// Whole pixels as SVG attribute values.
fn px(n: i32) -> AttrValue {
    AttrValue::from(n.to_string())
}

/// The picture: an SVG at its natural size (the figure scrolls sideways when it is wide).
fn net_picture(pic: &Picture, host_known: bool) -> Html {
    let d = layout(pic);
    let (bridge_text, bridge_state) = match &pic.bridge {
        Some(b) => (
            format!(
                "{} · {} · gateway {} · {}",
                b.name,
                b.subnet,
                b.gateway,
                if b.up { "up" } else { "down" }
            ),
            if b.up { "up" } else { "down" },
        ),
        None if host_known => ("no session network reported".to_string(), "unknown"),
        None => (
            "bridge: waiting for the host's view…".to_string(),
            "unknown",
        ),
    };
    let host_label = match &pic.bridge {
        Some(b) => format!("host · network {}", b.network),
        None => "host".to_string(),
    };
    let egress = pic.bridge.as_ref().map(|b| {
        let (class, text) = if b.egress {
            ("on", "egress on: NAT beyond the subnet")
        } else {
            ("off", "egress off: the subnet only")
        };
        html! {
            <text class={classes!("egress", class)} x={px(d.host.x + d.host.width - 8)}
                y={px(d.host.y + 16)} text-anchor="end">{ text }</text>
        }
    });
    let nodes: Html = pic
        .nodes
        .iter()
        .zip(&d.nodes)
        .map(|(node, at)| net_node(node, at.middle, at.body, &d))
        .collect();
    let cables: Html = pic
        .cables
        .iter()
        .zip(&d.cables)
        .map(|(cable, at)| {
            let title = format!(
                "a veth pair: {} in {} ↔ {} in {}",
                cable.from_iface, cable.from, cable.to_iface, cable.to
            );
            html! {
                <g class="net-cable" data-from={cable.from.clone()} data-to={cable.to.clone()}>
                    <title>{ title }</title>
                    <path d={at.path.clone()} />
                    <text x={px(at.from_label.x)} y={px(at.from_label.y)}
                        text-anchor={at.from_label.anchor}>{ &cable.from_iface }</text>
                    <text x={px(at.to_label.x)} y={px(at.to_label.y)}
                        text-anchor={at.to_label.anchor}>{ &cable.to_iface }</text>
                </g>
            }
        })
        .collect();
    let empty = pic.nodes.is_empty().then(|| {
        html! {
            // SVG text does not wrap: two lines, each within the picture's width.
            <text class="net-empty" x={px(d.bridge.x)} y={px(HOST_BOTTOM + 24)}>
                <tspan x={px(d.bridge.x)}>{ "no containers yet: each one with a network" }</tspan>
                <tspan x={px(d.bridge.x)} dy="14">{ "of its own is plugged into this bridge" }</tspan>
            </text>
        }
    });
    let bridge_name = pic.bridge.as_ref().map(|b| AttrValue::from(b.name.clone()));
    html! {
        <figure class="net-picture" data-bridge={bridge_name}>
            <svg width={px(d.width)} height={px(d.height)}
                viewBox={format!("0 0 {} {}", d.width, d.height)} role="img"
                aria-label="the session's network: the host's bridge, a veth pair to each container, cables between containers">
                <rect class="host-zone" x={px(d.host.x)} y={px(d.host.y)} width={px(d.host.width)}
                    height={px(d.host.height)} rx="6" />
                <text class="zone-label" x={px(d.host.x + 8)} y={px(d.host.y + 16)}>{ host_label }</text>
                { egress }
                <g class={classes!("net-bridge", bridge_state)}>
                    <rect class="bridge-bar" x={px(d.bridge.x)} y={px(d.bridge.y)} width={px(d.bridge.width)}
                        height={px(d.bridge.height)} rx="4" />
                    <text x={px(d.bridge.x + 10)} y={px(d.bridge.y + 14)}>{ bridge_text }</text>
                </g>
                { cables }
                { nodes }
                { empty }
            </svg>
        </figure>
    }
}

/// One container: its line from the bridge (the veth pair: host end, then `eth0`), its box
/// with name, address and published ports.
fn net_node(node: &Node, middle: i32, body: Rect, d: &Drawing) -> Html {
    let link = node.attached.then(|| {
        let veth = node.host_veth.clone().unwrap_or_else(|| "veth".to_string());
        html! {
            <>
                <line class="net-link" x1={px(middle)} y1={px(d.bridge.bottom())} x2={px(middle)} y2={px(body.y)} />
                <circle class="veth-end" cx={px(middle)} cy={px(d.bridge.bottom())} r="3" />
                <text class="veth-label" x={px(middle + 5)} y={px(HOST_BOTTOM - 8)}>{ veth }</text>
                <text class="eth-label" x={px(middle + 5)} y={px(BOX_TOP - 8)}>{ &node.eth }</text>
            </>
        }
    });
    let address = match (&node.address, &node.shares_net_with) {
        (Some(address), _) => address.clone(),
        (None, Some(other)) if other == "host" => "in the host's network namespace".to_string(),
        (None, Some(other)) => format!("in {other}'s network namespace"),
        (None, None) if node.attached => "…".to_string(),
        (None, None) => "no network (lo only)".to_string(),
    };
    let ports: Html = node
        .ports
        .iter()
        .enumerate()
        .map(|(k, port)| {
            html! {
                <text class="node-port" x={px(body.x + 8)} y={px(body.y + 33 + PORT_LINE * (k as i32 + 1))}
                    data-port={port.host.to_string()}>{ port.label() }</text>
            }
        })
        .collect();
    html! {
        <g class={classes!("net-node", node.attached.then_some("attached"))}
            data-container={node.name.clone()}
            data-address={node.address.clone()}>
            { link }
            <rect class="node-box" x={px(body.x)} y={px(body.y)} width={px(body.width)}
                height={px(body.height)} rx="5" />
            <text class="node-name" x={px(body.x + 8)} y={px(body.y + 17)}>{ &node.name }</text>
            <text class="node-addr" x={px(body.x + 8)} y={px(body.y + 33)}>{ address }</text>
            { ports }
        </g>
    }
}

/// The panel: the picture, and the move control (one component: each component type costs the
/// page its own copy of Yew's lifecycle code).
#[function_component]
pub fn NetworkPanel() -> Html {
    let session = use_session();
    let state = &session.state;
    let running: Vec<&ContainerInfo> = state
        .cards
        .iter()
        .filter(|c| c.running())
        .map(|c| &c.info)
        .collect();
    let views = &state.views;
    let drawn = picture(views.host.latest.network.as_ref(), &running, views);
    let host_known = views.host.updates > 0;

    // The move control: an interface's name, the kind made when `from` has none, from and to
    // (the running containers), the button, the error where it belongs, and what to notice.
    let fields = use_state(MoveFields::default);
    let local = use_state(Vec::<Problem>::new);
    let names = state.running_names();
    let (from, to) = fields.resolve(&names);
    let mover = &state.mover;

    // The selects show the resolved choice even after the user picked by hand (a container
    // that went away falls back to the default).
    let from_ref = use_node_ref();
    let to_ref = use_node_ref();
    {
        let (from_ref, to_ref) = (from_ref.clone(), to_ref.clone());
        use_effect_with(
            (from.clone(), to.clone(), names.clone()),
            move |(from, to, _)| {
                for (select, value) in [(&from_ref, from), (&to_ref, to)] {
                    if let Some(select) = select.cast::<HtmlSelectElement>() {
                        select.set_value(value);
                    }
                }
            },
        );
    }

    let errors_for = |field: Option<&str>| -> Html {
        let mine: Vec<&Problem> = if local.is_empty() {
            mover.error_for(field).into_iter().collect()
        } else {
            local
                .iter()
                .filter(|p| p.field.as_deref() == field)
                .collect()
        };
        mine.into_iter()
            .map(|p| match field {
                Some(_) => html! { <span class="field-error">{ &p.message }</span> },
                None => html! {
                    <p class="error move-error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p>
                },
            })
            .collect()
    };
    let invalid = |field: &str| {
        let wrong = if local.is_empty() {
            mover.error_for(Some(field)).is_some()
        } else {
            local.iter().any(|p| p.field.as_deref() == Some(field))
        };
        classes!("field", wrong.then_some("invalid"))
    };

    let edit = |apply: fn(&mut MoveFields, String)| {
        let fields = fields.clone();
        let local = local.clone();
        move |value: String| {
            let mut next = (*fields).clone();
            apply(&mut next, value);
            fields.set(next);
            if !local.is_empty() {
                local.set(Vec::new());
            }
        }
    };
    let on_interface = {
        let set = edit(|f, v| f.interface = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_kind = {
        let set = edit(|f, v| f.kind = v.parse().unwrap_or_default());
        Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let on_from = {
        let set = edit(|f, v| f.from = Some(v));
        Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let on_to = {
        let set = edit(|f, v| f.to = Some(v));
        Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let onsubmit = {
        let fields = fields.clone();
        let local = local.clone();
        let link = session.link.clone();
        let names = names.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match fields.to_move(&names) {
                Ok(request) => {
                    local.set(Vec::new());
                    let message = request.clone();
                    link.request(Origin::Move(request), |reference| {
                        message.message(reference)
                    });
                }
                Err(problems) => local.set(problems),
            }
        })
    };

    let options = |chosen: &str| -> Html {
        names
            .iter()
            .map(|name| html! { <option value={name.clone()} selected={name == chosen}>{ name }</option> })
            .collect()
    };
    let kinds: Html = kind_options()
        .into_iter()
        .map(|(kind, label)| {
            html! { <option value={kind.as_str()} selected={kind == fields.kind}>{ label }</option> }
        })
        .collect();
    let open = state.conn == Conn::Open;
    let blocked = names.len() < 2;
    let done = mover
        .done
        .as_ref()
        .filter(|_| local.is_empty())
        .map(|m| format!("moved {} from {} to {}", m.interface, m.from, m.to));

    html! {
        <section class="network" aria-label="the session's network">
            <h2>{ "network" }</h2>
            <div class="network-body">
                { net_picture(&drawn, host_known) }
                <form class="net-move" {onsubmit} novalidate=true aria-label="move an interface">
                    <h3>{ "move an interface" }</h3>
                    <div class="move-row">
                        <label class={invalid("interface")}>
                            <span>{ "interface" }</span>
                            <input name="interface" value={fields.interface.clone()} autocomplete="off"
                                spellcheck="false" oninput={on_interface} />
                            { errors_for(Some("interface")) }
                        </label>
                        <label class="field" title="what is made in the from container when it has no interface of that name">
                            <span>{ "kind" }</span>
                            <select name="kind" onchange={on_kind}>{ kinds }</select>
                        </label>
                        <label class={invalid("from")}>
                            <span>{ "from" }</span>
                            <select name="from" ref={from_ref} onchange={on_from}>{ options(&from) }</select>
                            { errors_for(Some("from")) }
                        </label>
                        <label class={invalid("to")}>
                            <span>{ "to" }</span>
                            <select name="to" ref={to_ref} onchange={on_to}>{ options(&to) }</select>
                            { errors_for(Some("to")) }
                        </label>
                        <button type="submit" class="primary move" disabled={!open || blocked || mover.busy()}>
                            { if mover.busy() { "moving…" } else { "Move" } }
                        </button>
                    </div>
                    { errors_for(None) }
                    if let Some(done) = done {
                        <p class="move-done">{ done }</p>
                    }
                    if blocked {
                        <p class="hint">{ "needs two running containers" }</p>
                    }
                    <p class="hint move-hint">{ MOVE_HINT }</p>
                </form>
            </div>
        </section>
    }
}
