//! Images, above the terminals: the layer stack of the image the form's picker selected (top
//! of the stack drawn on top: each layer's short digest, size and the instruction that made
//! it, then the image's ENTRYPOINT, CMD, WORKDIR, USER and ENV), and the build panel: a name,
//! a Dockerfile, the streamed log, and, while it builds, the stack growing layer by layer.

use isolab_shared::protocol::{ClientMsg, ImageInfo};
use web_sys::{Element, HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::app::use_session;
use crate::images::{
    config_rows, default_command, from_image, BuildPhase, Shown, StackRow, BUILD_HINT,
    EXAMPLE_DOCKERFILE,
};
use crate::state::{Conn, Origin};
use crate::view::format;

/// How close to the end of the log (in pixels) still counts as following it.
const FOLLOW_SLACK_PX: i32 = 24;

#[function_component]
pub fn ImagesPanel() -> Html {
    let session = use_session();
    let state = &session.state;
    let images = &state.images;
    let open = use_state(|| false);
    let name = use_state(|| "layered".to_string());
    let dockerfile = use_state(|| EXAMPLE_DOCKERFILE.to_string());
    let log_ref = use_node_ref();
    // Whether the log is scrolled to its end (then new lines keep it there).
    let follow = use_mut_ref(|| true);

    let log_len = images.build.as_ref().map_or(0, |b| b.log.len());
    {
        let log_ref = log_ref.clone();
        let follow = follow.clone();
        use_effect_with(log_len, move |_| {
            if let (true, Some(pre)) = (*follow.borrow(), log_ref.cast::<Element>()) {
                pre.set_scroll_top(pre.scroll_height());
            }
        });
    }
    let onscroll = {
        let follow = follow.clone();
        Callback::from(move |e: Event| {
            let pre = e.target_unchecked_into::<Element>();
            *follow.borrow_mut() =
                pre.scroll_top() + pre.client_height() + FOLLOW_SLACK_PX >= pre.scroll_height();
        })
    };

    let toggle = {
        let open = open.clone();
        Callback::from(move |_| open.set(!*open))
    };
    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_dockerfile = {
        let dockerfile = dockerfile.clone();
        Callback::from(move |e: InputEvent| {
            dockerfile.set(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        })
    };
    let on_build = {
        let link = session.link.clone();
        let name = name.clone();
        let dockerfile = dockerfile.clone();
        let follow = follow.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            *follow.borrow_mut() = true;
            let name = name.trim().to_string();
            let dockerfile = (*dockerfile).clone();
            let from = from_image(&dockerfile).map(str::to_string);
            let origin = Origin::Build {
                name: name.clone(),
                from,
            };
            link.request(origin, |reference| ClientMsg::Build {
                reference,
                name,
                dockerfile,
            });
        })
    };

    let building = images.building();
    let blocked = state.conn != Conn::Open || building || name.trim().is_empty();
    let build = images.build.as_ref();
    let status = build.map(|b| {
        let (phase, text) = match &b.phase {
            BuildPhase::Running => (
                "running",
                format!("building {}: {} layers so far…", b.name, b.layers.len()),
            ),
            BuildPhase::Done(_) => (
                "done",
                format!("built {}: {} layers", b.name, b.layers.len()),
            ),
            BuildPhase::Failed(_) => ("failed", format!("{}: the build failed", b.name)),
        };
        html! { <span class={classes!("build-status", phase)} data-phase={phase}>{ text }</span> }
    });
    let error = build.and_then(|b| match &b.phase {
        BuildPhase::Failed(p) => Some(html! {
            <p class="error build-error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p>
        }),
        _ => None,
    });
    let log = build.filter(|b| !b.log.is_empty() || b.running()).map(|b| {
        html! {
            <pre class="build-log" ref={log_ref.clone()} onscroll={onscroll.clone()}>
                if b.log_trimmed {
                    <span class="hint">{ "(earlier output dropped)\n" }</span>
                }
                { &b.log }
            </pre>
        }
    });
    let hint = super::preset_bar::hint_html(&BUILD_HINT);

    let panel = if *open {
        html! {
            <form class="build-panel" aria-label="build an image" onsubmit={on_build} novalidate=true>
                <header>
                    <h2>{ "Build an image" }</h2>
                    <button type="button" class="link" onclick={toggle} title="close the build panel">{ "×" }</button>
                </header>
                <label class="field">
                    <span>{ "image name" }</span>
                    <input name="build-name" value={(*name).clone()} oninput={on_name}
                        autocomplete="off" spellcheck="false" />
                </label>
                <label class="field">
                    <span>{ "Dockerfile (no build context: COPY is not available here)" }</span>
                    <textarea name="dockerfile" rows="7" spellcheck="false" value={(*dockerfile).clone()}
                        oninput={on_dockerfile} />
                </label>
                <div class="submit">
                    <button type="submit" class="primary build" disabled={blocked}>
                        { if building { "building…" } else { "build" } }
                    </button>
                    { status }
                </div>
                { error }
                <div class="build-hint">{ hint }</div>
                { log }
            </form>
        }
    } else {
        html! {
            <div class="build-closed">
                <button class="build-open" onclick={toggle}>{ "build an image…" }</button>
                { status }
            </div>
        }
    };

    html! {
        <section class="images" aria-label="images">
            { layer_stack(&images.shown()) }
            { panel }
        </section>
    }
}

/// The stack as boxes, top layer first, then the image's run settings.
fn layer_stack(shown: &Shown) -> Html {
    let total: u64 = shown.rows.iter().map(|r| r.size).sum();
    let count = shown.rows.len();
    let summary = match (count, shown.source) {
        (0, "build") => "waiting for the first layer…".to_string(),
        (0, _) => "not listed by the server (yet)".to_string(),
        (1, _) => format!("1 layer · {}", format::bytes(total)),
        (n, _) => format!("{n} layers · {}", format::bytes(total)),
    };
    let rows: Html = shown.rows.iter().map(layer_row).collect();
    let config = shown.image.map(image_config);
    html! {
        <div class="layer-stack" data-source={shown.source} data-count={count.to_string()}
            aria-label="the image's layers, top first">
            <header>
                <h2>{ "layers of " }<strong class="stack-title">{ &shown.title }</strong></h2>
                <span class="hint">{ summary }</span>
            </header>
            <div class="layers">{ rows }</div>
            if count > 0 {
                <div class="ground">{ "bottom of the stack: the overlay's lowest layer" }</div>
            }
            { config }
        </div>
    }
}

fn layer_row(row: &StackRow) -> Html {
    let class = classes!(
        "layer",
        row.new.then_some("new"),
        row.latest.then_some("latest")
    );
    let created_by = if row.created_by.is_empty() {
        html! { <span class="created-by unknown">{ "(not recorded)" }</span> }
    } else {
        html! { <code class="created-by" title={row.created_by.clone()}>{ &row.created_by }</code> }
    };
    html! {
        <div {class} key={format!("{}-{}", row.index, row.digest)} data-index={row.index.to_string()}
            title={row.digest.clone()}>
            <span class="layer-index">{ row.index }</span>
            <code class="digest">{ &row.short_digest }</code>
            { created_by }
            <span class="size">{ &row.size_text }</span>
            <span class="layer-bar" style={format!("width: {}%", row.bar)}></span>
        </div>
    }
}

fn image_config(image: &ImageInfo) -> Html {
    let rows: Html = config_rows(image)
        .into_iter()
        .map(|(key, value)| {
            html! {
                <tr data-key={key}><th>{ key }</th><td><code>{ value }</code></td></tr>
            }
        })
        .collect();
    let runs = default_command(image).join(" ");
    html! {
        <table class="image-config">
            { rows }
            <tr class="runs"><th>{ "runs" }</th><td>
                if runs.is_empty() {
                    { "nothing by default: give a command" }
                } else {
                    <code>{ runs }</code>{ " (when the command is left empty)" }
                }
            </td></tr>
        </table>
    }
}
