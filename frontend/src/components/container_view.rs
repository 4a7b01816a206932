//! A container's live view, under its terminal: sparklines of memory, CPU and pids against
//! their limits, OOM kills, the process tree, its interfaces (with their kind, and for a veth
//! where its other end is), a summary of its mounts, its uid map, and the kernel it shares
//! with the host. (Its hostname is the badge in the terminal's header.)

use isolab_shared::protocol::view::{CgroupView, InterfaceView, MountsView};
use yew::prelude::*;

use crate::components::{process_tree, sparkline, Series};
use crate::view::{format, TargetView};

#[derive(Properties, PartialEq)]
pub struct ContainerViewProps {
    pub name: AttrValue,
    /// `None` until the first `view`.
    pub view: Option<TargetView>,
}

#[function_component]
pub fn ContainerView(props: &ContainerViewProps) -> Html {
    let body = match &props.view {
        Some(view) if view.updates > 0 => details(view),
        Some(TargetView {
            error: Some(error), ..
        }) => html! { <p class="error">{ "live view unavailable: " }{ error }</p> },
        _ => html! { <p class="hint">{ "waiting for the live view…" }</p> },
    };
    html! {
        <section class="cview" data-view={props.name.clone()} aria-label={format!("{}: live view", props.name)}>
            { body }
        </section>
    }
}

fn details(view: &TargetView) -> Html {
    let latest = &view.latest;
    let charts = latest.cgroup.as_ref().map(|cg| charts(view, cg));
    let processes = latest.processes.as_ref().map(|p| {
        html! {
            <details class="procs-box" open=true>
                <summary>{ format!("processes ({})", p.list.len()) }</summary>
                { process_tree(&p.list, false) }
            </details>
        }
    });
    let interfaces = latest.interfaces.as_deref().map(interfaces);
    let mounts = latest.mounts.as_ref().map(mounts);
    let uid_map = latest
        .id_maps
        .as_ref()
        .map(|maps| format::id_map(&maps.uid));
    let kernel = latest.kernel.as_ref().map(|k| {
        let shared = if k.shared_with_host {
            " — shared with the host"
        } else {
            ""
        };
        format!("{}{shared}", k.release)
    });
    html! {
        <>
            { charts }
            { processes }
            <dl class="facts">
                if let Some(interfaces) = interfaces {
                    <dt>{ "network" }</dt><dd>{ interfaces }</dd>
                }
                if let Some(mounts) = mounts {
                    <dt>{ "mounts" }</dt><dd>{ mounts }</dd>
                }
                if let Some(uid_map) = uid_map {
                    <dt title="uids inside → on the host (how many)">{ "uid map" }</dt><dd><code>{ uid_map }</code></dd>
                }
                if let Some(kernel) = kernel {
                    <dt>{ "kernel" }</dt><dd>{ kernel }</dd>
                }
            </dl>
        </>
    }
}

fn charts(view: &TargetView, cg: &CgroupView) -> Html {
    let history = &view.history;
    let capacity = history.memory.capacity();
    let of = |limit: Option<String>| limit.map_or(String::new(), |l| format!(" / {l}"));
    let memory = format!(
        "{}{}",
        format::bytes(cg.memory_current),
        of(cg.memory_limit.map(format::bytes))
    );
    let cpu = format!(
        "{}{}",
        format::cpus(cg.cpu_rate),
        of(cg.cpu_limit.map(format::cpus))
    );
    let pids = format!(
        "{}{}",
        cg.pids_current,
        of(cg.pids_limit.map(|l| l.to_string()))
    );
    let memory = sparkline(Series {
        label: "memory",
        kind: "memory",
        values: history.memory.points(),
        limit: cg.memory_limit.map(|l| l as f64),
        capacity,
        text: memory,
    });
    let cpu = sparkline(Series {
        label: "CPU",
        kind: "cpu",
        values: history.cpu.points(),
        limit: cg.cpu_limit,
        capacity,
        text: cpu,
    });
    let pids = sparkline(Series {
        label: "pids",
        kind: "pids",
        values: history.pids.points(),
        limit: cg.pids_limit.map(|l| l as f64),
        capacity,
        text: pids,
    });
    html! {
        <div class="charts">
            { memory }{ cpu }{ pids }
            <div class={classes!("oom", (cg.oom_kills > 0).then_some("bad"))}
                title="processes the kernel killed at the memory limit">
                <span class="spark-label">{ "OOM kills" }</span>
                <strong>{ cg.oom_kills }</strong>
            </div>
        </div>
    }
}

fn interfaces(list: &[InterfaceView]) -> Html {
    if list.is_empty() {
        return html! { <span class="hint">{ "no interfaces" }</span> };
    }
    list.iter()
        .map(|i| {
            let state = if i.up { "up" } else { "down" };
            let addresses = if i.addresses.is_empty() {
                String::new()
            } else {
                format!(" {}", i.addresses.join(" "))
            };
            let peer = i.peer.as_ref().map(|peer| {
                html! { <span class="iface-peer" title="where its other end is">{ "↔ " }{ peer }</span> }
            });
            html! {
                <span class={classes!("iface", state)} data-iface={i.name.clone()}>
                    <strong>{ &i.name }</strong>
                    if let Some(kind) = &i.kind {
                        <span class="iface-kind">{ kind }</span>
                    }
                    { " " }{ state }<code>{ addresses }</code>{ peer }
                </span>
            }
        })
        .collect()
}

fn mounts(m: &MountsView) -> String {
    let root = if m.root_layers.is_empty() {
        m.root_fstype.clone()
    } else {
        let layers = m.root_layers.len();
        let s = if layers == 1 { "" } else { "s" };
        format!("{} ({layers} layer{s})", m.root_fstype)
    };
    format!(
        "{} mounts · root {root} · {} masked paths · {} read-only",
        m.count,
        m.masked.len(),
        m.read_only.len()
    )
}
