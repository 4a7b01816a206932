//! The create form. Problems are shown under their field: first the spec's own checks (run
//! before sending), then the server's answer to the `create` this form sent (its `field`).
//! Errors without a field, or for a field not on the form, are shown under the button.
//! The image is picked from the server's list (the choice is the state's: the layer stack
//! shows it); an empty command runs the image's ENTRYPOINT and CMD.

use isolab_shared::protocol::ClientMsg;
use isolab_shared::spec::{MemorySize, NsKind};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::use_session;
use crate::form::{form_field, FormFields};
use crate::images::default_command;
use crate::state::{Action, Conn, Origin, Problem};

const TEXT_FIELDS: [&str; 9] = [
    "image",
    "name",
    "hostname",
    "cmd",
    "memory",
    "cpus",
    "pids_limit",
    "publish",
    "volumes",
];

#[function_component]
pub fn SpecForm() -> Html {
    let session = use_session();
    let state = &session.state;
    let fields = use_state(FormFields::default);
    let local = use_state(Vec::<Problem>::new);

    let problems: Vec<Problem> = if local.is_empty() {
        state.form_error.iter().cloned().collect()
    } else {
        (*local).clone()
    };
    let errors_for = |field: &str| -> Vec<AttrValue> {
        problems
            .iter()
            .filter(|p| p.field.as_deref().map(form_field) == Some(field))
            .map(|p| AttrValue::from(p.message.clone()))
            .collect()
    };
    let on_form = |p: &&Problem| {
        p.field.as_deref().is_some_and(|f| {
            let f = form_field(f);
            TEXT_FIELDS.contains(&f) || f.starts_with("namespaces.")
        })
    };
    let general: Html = problems
        .iter()
        .filter(|p| !on_form(p))
        .map(|p| html! { <p class="error" role="alert"><code>{ &p.code }</code>{ " " }{ &p.message }</p> })
        .collect();

    // Stores one field's new text (by its spec name); local problems are stale after an edit.
    let update = {
        let fields = fields.clone();
        let local = local.clone();
        Callback::from(move |(field, value): (String, String)| {
            let mut next = (*fields).clone();
            next.set(&field, value);
            fields.set(next);
            if !local.is_empty() {
                local.set(Vec::new());
            }
        })
    };
    let edit = |field: &str| {
        let field = field.to_string();
        update.reform(move |value: String| (field.clone(), value))
    };

    let selected = state.images.selected.clone();
    let onsubmit = {
        let fields = fields.clone();
        let local = local.clone();
        let link = session.link.clone();
        let selected = selected.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let fields = FormFields {
                image: selected.clone(),
                ..(*fields).clone()
            };
            match fields.to_spec() {
                Ok(spec) => {
                    local.set(Vec::new());
                    link.request(Origin::Create, |reference| ClientMsg::Create {
                        reference,
                        spec: Box::new(spec),
                    });
                }
                Err(problems) => local.set(problems),
            }
        })
    };

    let limits = state.limits.as_ref();
    let default_memory = limits.map(|l| format!("{}", MemorySize(l.default_memory)));
    let default_cpus = limits.map(|l| l.default_cpus.to_string());
    let default_pids = limits.map(|l| l.default_pids.to_string());
    let running = state.running_names();
    let on_image = {
        let session = session.clone();
        let local = local.clone();
        Callback::from(move |name: String| {
            session.dispatch(Action::SelectImage(name));
            if !local.is_empty() {
                local.set(Vec::new());
            }
        })
    };
    let mut image_names: Vec<String> = state.images.list.iter().map(|i| i.name.clone()).collect();
    if !image_names.contains(&selected) {
        image_names.insert(0, selected.clone());
    }
    let cmd_placeholder = match state.images.selected().map(default_command) {
        Some(cmd) if !cmd.is_empty() => format!("the image's CMD: {}", cmd.join(" ")),
        _ => "the image's CMD".to_string(),
    };
    let blocked = if state.conn != Conn::Open {
        Some("not connected")
    } else if state.at_limit() {
        Some("the session is at its container limit")
    } else {
        None
    };

    let namespaces: Html = NsKind::ALL
        .into_iter()
        .map(|kind| {
            let field = format!("namespaces.{kind}");
            let onchange = edit(&field);
            html! {
                <NsSelect kind={kind.to_string()} value={fields.namespace(kind).to_string()}
                    containers={running.clone()} {onchange} errors={errors_for(&field)} />
            }
        })
        .collect();

    html! {
        <form class="spec-form" {onsubmit} novalidate=true>
            <h2>{ "New container" }</h2>
            <ImagePicker names={image_names} value={selected} onchange={on_image}
                errors={errors_for("image")} />
            <TextField label="name" name="name" value={fields.name.clone()} placeholder="chosen by the server"
                oninput={edit("name")} errors={errors_for("name")} />
            <TextField label="hostname" name="hostname" value={fields.hostname.clone()} placeholder="the name"
                oninput={edit("hostname")} errors={errors_for("hostname")} />
            <TextField label="command" name="cmd" value={fields.cmd.clone()} placeholder={cmd_placeholder}
                oninput={edit("cmd")} errors={errors_for("cmd")} />
            <div class="row3">
                <TextField label="memory" name="memory" value={fields.memory.clone()}
                    placeholder={default_memory} oninput={edit("memory")} errors={errors_for("memory")} />
                <TextField label="CPUs" name="cpus" value={fields.cpus.clone()}
                    placeholder={default_cpus} oninput={edit("cpus")} errors={errors_for("cpus")} />
                <TextField label="pids" name="pids_limit" value={fields.pids.clone()}
                    placeholder={default_pids} oninput={edit("pids_limit")} errors={errors_for("pids_limit")} />
            </div>
            <TextField label="publish (host:container, on 127.0.0.1)" name="publish" value={fields.publish.clone()}
                placeholder="8080:80, 8443:443" oninput={edit("publish")} errors={errors_for("publish")} />
            <TextField label="volumes (name:/path[:ro], kept for the session)" name="volumes"
                value={fields.volumes.clone()} placeholder="data:/data, conf:/etc/app:ro"
                oninput={edit("volumes")} errors={errors_for("volumes")} />
            <label class="field">
                <span>{ "runtime (the same config.json, run by…)" }</span>
                <select name="runtime" onchange={edit("runtime").reform(|e: Event| e.target_unchecked_into::<HtmlSelectElement>().value())}>
                    { for isolab_shared::spec::RUNTIMES.iter().map(|r| html! {
                        <option value={*r} selected={fields.runtime.as_str() == *r
                            || (fields.runtime.is_empty() && *r == isolab_shared::spec::RUNTIMES[0])}>{ *r }</option>
                    }) }
                </select>
            </label>
            <fieldset class="namespaces">
                <legend>{ "namespaces" }</legend>
                { namespaces }
            </fieldset>
            <div class="submit">
                <button type="submit" class="primary" disabled={blocked.is_some() || state.creating}>
                    { if state.creating { "creating…" } else { "create" } }
                </button>
                if let Some(why) = blocked {
                    <span class="hint">{ why }</span>
                }
            </div>
            { general }
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct TextFieldProps {
    label: AttrValue,
    /// The spec field's name (also the input's).
    name: AttrValue,
    value: AttrValue,
    #[prop_or_default]
    placeholder: Option<AttrValue>,
    oninput: Callback<String>,
    errors: Vec<AttrValue>,
}

#[function_component]
fn TextField(props: &TextFieldProps) -> Html {
    let oninput = props
        .oninput
        .reform(|e: InputEvent| e.target_unchecked_into::<HtmlInputElement>().value());
    let invalid = !props.errors.is_empty();
    html! {
        <label class={classes!("field", invalid.then_some("invalid"))}>
            <span>{ &props.label }</span>
            <input name={&props.name} value={&props.value} placeholder={props.placeholder.clone()}
                aria-invalid={invalid.to_string()} autocomplete="off" spellcheck="false" {oninput} />
            { for props.errors.iter().map(|e| html! { <span class="field-error">{ e }</span> }) }
        </label>
    }
}

#[derive(Properties, PartialEq)]
struct ImagePickerProps {
    /// The server's images (and the current choice, listed or not).
    names: Vec<String>,
    value: String,
    onchange: Callback<String>,
    errors: Vec<AttrValue>,
}

/// The image field: a choice among the server's images.
#[function_component]
fn ImagePicker(props: &ImagePickerProps) -> Html {
    let onchange = props
        .onchange
        .reform(|e: Event| e.target_unchecked_into::<HtmlSelectElement>().value());
    // The `selected` attribute stops counting once the user picked by hand: the choice made
    // elsewhere (a build just made an image) is set as the select's value after each render.
    let select = use_node_ref();
    {
        let select = select.clone();
        use_effect_with(
            (props.value.clone(), props.names.clone()),
            move |(value, _)| {
                if let Some(select) = select.cast::<HtmlSelectElement>() {
                    select.set_value(value);
                }
            },
        );
    }
    let invalid = !props.errors.is_empty();
    html! {
        <label class={classes!("field", invalid.then_some("invalid"))}>
            <span>{ "image" }</span>
            <select name="image" class="image-picker" ref={select} {onchange}
                aria-invalid={invalid.to_string()}>
                { for props.names.iter().map(|name| html! {
                    <option value={name.clone()} selected={*name == props.value}>{ name }</option>
                }) }
            </select>
            { for props.errors.iter().map(|e| html! { <span class="field-error">{ e }</span> }) }
        </label>
    }
}

#[derive(Properties, PartialEq)]
struct NsSelectProps {
    kind: AttrValue,
    value: AttrValue,
    /// Running containers whose namespace may be joined.
    containers: Vec<String>,
    onchange: Callback<String>,
    errors: Vec<AttrValue>,
}

#[function_component]
fn NsSelect(props: &NsSelectProps) -> Html {
    let onchange = props
        .onchange
        .reform(|e: Event| e.target_unchecked_into::<HtmlSelectElement>().value());
    let mut choices = vec!["private".to_string(), "host".to_string()];
    choices.extend(
        props
            .containers
            .iter()
            .map(|name| format!("container:{name}")),
    );
    if !choices.iter().any(|c| c.as_str() == props.value.as_str()) {
        choices.push(props.value.to_string());
    }
    let invalid = !props.errors.is_empty();
    html! {
        <label class={classes!("field", "ns", invalid.then_some("invalid"))}>
            <span>{ &props.kind }</span>
            <select name={format!("namespaces.{}", props.kind)} {onchange}>
                { for choices.iter().map(|c| html! {
                    <option value={c.clone()} selected={c.as_str() == props.value.as_str()}>{ c }</option>
                }) }
            </select>
            { for props.errors.iter().map(|e| html! { <span class="field-error">{ e }</span> }) }
        </label>
    }
}
