//! A client's text frame, decoded as a `ClientMsg` with serde_json: both directly
//! (`serde_json::from_slice::<ClientMsg>`) and the way the server's session does it
//! (`backend/src/session/mod.rs`, `parse`: first a `serde_json::Value`, whose `type` must be one
//! of `ClientMsg::TYPES`, then `serde_json::from_value::<ClientMsg>`).
//!
//! Checks: decoding never panics; a JSON object with a known `type` that the direct decode
//! accepts, the server's way accepts too, as the same message (the server's way may accept
//! more: a repeated key keeps its last value in a `Value`, where the direct decode refuses it);
//! an object whose `type` is not in `ClientMsg::TYPES` never decodes; a message that decodes serializes, decodes again to an equal
//! value, and serializes to the same bytes the second time (the round trip is stable).
//!
//! One exception, by default: a `create`'s `spec.cpus` (the only float a client sends) may come
//! back a few units in the last place off, because serde_json without its `float_roundtrip`
//! feature parses some floats 1 ULP off (docs/fuzzing.md, "Findings"). The target checks that
//! the two are that close, then compares the rest exactly. Set `ISOLAB_FUZZ_STRICT_FLOATS=1`
//! to require exact equality there too.

#![no_main]

use std::sync::OnceLock;

use isolab_shared::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;

/// Whether floats must survive the round trip exactly (`ISOLAB_FUZZ_STRICT_FLOATS=1`).
fn strict_floats() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("ISOLAB_FUZZ_STRICT_FLOATS").is_some_and(|v| v == "1"))
}

/// Equal, or within 16 units in the last place: serde_json's best-effort float parsing was
/// 1 off in every case seen; 16 leaves room for its longer paths (very long or very small
/// numbers). Finite floats of one sign are ordered like their bit patterns.
fn close(a: f64, b: f64) -> bool {
    a == b
        || (a.is_sign_positive() == b.is_sign_positive() && a.to_bits().abs_diff(b.to_bits()) <= 16)
}

fuzz_target!(|data: &[u8]| {
    let direct = serde_json::from_slice::<ClientMsg>(data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(
            direct.is_err(),
            "not a JSON value, yet it decodes as a ClientMsg"
        );
        return;
    };
    // The server refuses a message without a string `type` (`bad_message`) and one whose type
    // it does not know (`unknown_type`) before decoding it. (The direct decode accepts serde's
    // sequence form of a tagged enum, `["list"]`, which has no `type` key: the server does not.)
    let Some(tag) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return;
    };
    if !ClientMsg::TYPES.contains(&tag.as_str()) {
        assert!(
            direct.is_err(),
            "type {tag:?} is not in ClientMsg::TYPES, yet it decodes"
        );
        return;
    }
    let server = serde_json::from_value::<ClientMsg>(value);
    if let Ok(msg) = &direct {
        assert_eq!(
            server.as_ref().ok(),
            Some(msg),
            "direct and Value decodes disagree"
        );
    }
    let Ok(msg) = server else {
        return;
    };
    // Cheap accessors the server calls on every message.
    let _ = msg.reference();

    let first = serde_json::to_vec(&msg).expect("a decoded ClientMsg must serialize");
    let mut again: ClientMsg = match serde_json::from_slice(&first) {
        Ok(again) => again,
        Err(err) => panic!(
            "a serialized ClientMsg does not decode: {err}\n  input:      {:?}\n  serialized: {}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&first),
        ),
    };
    if !strict_floats() {
        if let (ClientMsg::Create { spec: a, .. }, ClientMsg::Create { spec: b, .. }) =
            (&msg, &mut again)
        {
            if let (Some(x), Some(y)) = (a.cpus, b.cpus) {
                assert!(close(x, y), "cpus {x:?} came back as {y:?}");
                b.cpus = Some(x);
            }
        }
    }
    assert_eq!(
        msg,
        again,
        "round trip changed the message; serialized: {}",
        String::from_utf8_lossy(&first)
    );
    let second = serde_json::to_vec(&again).expect("a decoded ClientMsg must serialize");
    assert_eq!(
        first,
        second,
        "serialization is not stable: {} then {}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );

    // The `type` written is the one read.
    let written: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(written["type"].as_str(), Some(tag.as_str()));
});
