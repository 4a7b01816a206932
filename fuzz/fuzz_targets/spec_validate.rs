//! `ContainerSpec` decoding and validation, and the small parsers a spec's fields go through.
//!
//! The whole input is tried both ways:
//! - as JSON: `serde_json::from_slice::<ContainerSpec>` then `validate()` / `problems()`, which
//!   must never panic and must agree (`validate` is the first of `problems`); a spec that
//!   decodes must also survive a serialize/decode round trip with the same problems (`cpus`
//!   only to within a few units in the last place unless `ISOLAB_FUZZ_STRICT_FLOATS=1`: see
//!   docs/fuzzing.md, "Findings");
//! - as a string (when it is UTF-8): `MemorySize::from_str`, `PortMapping::parse`,
//!   `NsMode::from_str`, `NsKind::from_str`, `normalize_capability`, the name, hostname and
//!   image checks, and `env_problems`. Whatever parses must print (or re-normalise) to text
//!   that parses back to the same value.

#![no_main]

use std::str::FromStr;
use std::sync::OnceLock;

use isolab_shared::spec::{
    env_problems, is_valid_hostname, is_valid_image, is_valid_name, normalize_capability,
    ContainerSpec, MemorySize, NsKind, NsMode, PortMapping, CAPABILITIES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spec_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        strings(text);
    }
});

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

fn spec_json(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<ContainerSpec>(data) else {
        return;
    };
    let problems = spec.problems();
    match spec.validate() {
        Ok(()) => assert!(
            problems.is_empty(),
            "validate() is Ok but problems() = {problems:?}"
        ),
        Err(err) => assert_eq!(
            Some(&err),
            problems.first(),
            "validate() is not problems()[0]"
        ),
    }
    for p in &problems {
        assert!(!p.code().is_empty() && !p.field().is_empty() && !p.message().is_empty());
    }

    let json = serde_json::to_vec(&spec).expect("a decoded spec must serialize");
    let mut again: ContainerSpec = match serde_json::from_slice(&json) {
        Ok(again) => again,
        Err(err) => panic!(
            "a serialized spec does not decode: {err}\n  serialized: {}",
            String::from_utf8_lossy(&json)
        ),
    };
    if !strict_floats() {
        if let (Some(x), Some(y)) = (spec.cpus, again.cpus) {
            assert!(close(x, y), "cpus {x:?} came back as {y:?}");
            again.cpus = Some(x);
        }
    }
    assert_eq!(
        spec,
        again,
        "round trip changed the spec: {}",
        String::from_utf8_lossy(&json)
    );
    assert_eq!(problems, again.problems());
}

fn strings(text: &str) {
    // Sizes: what parses prints in its shortest exact form, which parses to the same size;
    // as a JSON string it reads the same as through FromStr.
    let size = MemorySize::from_str(text);
    if let Ok(size) = &size {
        let shown = size.to_string();
        assert_eq!(
            shown.parse::<MemorySize>().as_ref(),
            Ok(size),
            "{text:?} -> {size:?} -> {shown:?}"
        );
        let json = serde_json::to_string(size).unwrap();
        assert_eq!(
            serde_json::from_str::<MemorySize>(&json).ok().as_ref(),
            Some(size)
        );
    }
    let from_json = serde_json::from_value::<MemorySize>(serde_json::Value::String(text.into()));
    assert_eq!(
        from_json.ok(),
        size.as_ref().ok().copied(),
        "{text:?}: JSON string vs FromStr"
    );

    // Published ports.
    if let Some(p) = PortMapping::parse(text) {
        assert!(p.host_port > 0 && p.container_port > 0);
        assert!(matches!(p.protocol, "tcp" | "udp"));
        let shown = format!("{}:{}/{}", p.host_port, p.container_port, p.protocol);
        assert_eq!(PortMapping::parse(&shown), Some(p), "{text:?} -> {shown:?}");
    }

    // Namespace modes and kinds.
    if let Ok(mode) = NsMode::from_str(text) {
        let shown = mode.to_string();
        assert_eq!(
            shown.parse::<NsMode>().as_ref(),
            Ok(&mode),
            "{text:?} -> {shown:?}"
        );
        let json = serde_json::to_string(&mode).unwrap();
        assert_eq!(serde_json::from_str::<NsMode>(&json).ok(), Some(mode));
    }
    if let Ok(kind) = NsKind::from_str(text) {
        assert_eq!(kind.to_string(), text);
    }
    if is_valid_name(text) {
        let mode = format!("container:{text}").parse::<NsMode>();
        assert_eq!(mode.ok(), Some(NsMode::Container(text.to_string())));
    }

    // Capabilities: a normalised name is known and normalises to itself.
    if let Some(cap) = normalize_capability(text) {
        assert!(
            cap == "ALL" || CAPABILITIES.contains(&cap.as_str()),
            "{text:?} -> {cap:?}"
        );
        assert_eq!(normalize_capability(&cap).as_deref(), Some(cap.as_str()));
        assert_eq!(normalize_capability(&format!("cap_{cap}")), Some(cap));
    }

    // The other field checks: no panic, and a few obvious consequences.
    if is_valid_hostname(text) {
        assert!(!text.is_empty() && text.len() <= 253 && text.is_ascii());
    }
    if is_valid_image(text) {
        assert!(!text.is_empty() && text.len() <= 255 && text.is_ascii());
    }
    let entries: Vec<String> = text.split('\n').map(str::to_string).collect();
    let problems = env_problems(&entries);
    assert!(problems.len() <= entries.len());
}
