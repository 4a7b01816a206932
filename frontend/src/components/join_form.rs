//! The join form (`#join-form`): a workshop's code (prefilled from `/?join=CODE`) and a display
//! name → `join`. A refusal (an unknown code, a name taken or unusable) shows beside it.

use isolab_shared::protocol::codes;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::use_session;
use crate::join::join_request;
use crate::route::Route;
use crate::state::{Conn, Origin};

#[function_component]
pub fn JoinForm() -> Html {
    let session = use_session();
    let state = &session.state;
    let attendance = &state.attendance;
    let code = use_state(|| match &state.route {
        Route::Join { code } => code.clone(),
        _ => String::new(),
    });
    let name = use_state(String::new);

    let on_code = {
        let code = code.clone();
        Callback::from(move |e: InputEvent| {
            code.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_name = {
        let name = name.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let ready = join_request(&code, &name, None).is_some();
    let onsubmit = {
        let link = session.link.clone();
        let (code, name) = (code.clone(), name.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if join_request(&code, &name, None).is_some() {
                link.request(Origin::Join, |reference| {
                    join_request(&code, &name, reference).expect("checked above")
                });
            }
        })
    };

    let error = attendance.error.as_ref();
    let field_of = |code: &str| match code {
        codes::UNKNOWN_WORKSHOP => Some("code"),
        codes::BAD_NAME => Some("name"),
        _ => None,
    };
    let invalid = |field: &str| {
        error
            .and_then(|p| field_of(&p.code))
            .is_some_and(|f| f == field)
            .then_some("invalid")
    };
    let message = error.map(|p| {
        let text = match p.code.as_str() {
            codes::UNKNOWN_WORKSHOP => {
                format!("No workshop with that code (it may have ended): {}", p.message)
            }
            codes::BAD_NAME => format!("That name cannot be used: {}", p.message),
            _ => format!("{}: {}", p.code, p.message),
        };
        html! { <p id="join-error" class="error" role="alert" data-code={p.code.clone()}>{ text }</p> }
    });
    let blocked = state.conn != Conn::Open || attendance.joining || !ready;

    html! {
        <form id="join-form" class="join-form" aria-label="join a workshop" {onsubmit} novalidate=true>
            <h2>{ "Join a workshop" }</h2>
            <p class="hint">{ "The trainer gives the code. Your name is what the trainer sees next to your progress." }</p>
            <div class="join-fields">
                <label class={classes!("field", invalid("code"))}>
                    <span>{ "code" }</span>
                    <input id="join-code" name="code" value={(*code).clone()} oninput={on_code}
                        autocomplete="off" spellcheck="false" placeholder="AB12CD" />
                </label>
                <label class={classes!("field", invalid("name"))}>
                    <span>{ "your name" }</span>
                    <input id="join-name" name="display-name" value={(*name).clone()} oninput={on_name}
                        autocomplete="nickname" spellcheck="false" />
                </label>
                <button id="join-submit" type="submit" class="primary" disabled={blocked}>
                    { if attendance.joining { "joining…" } else { "Join" } }
                </button>
            </div>
            { message }
        </form>
    }
}
