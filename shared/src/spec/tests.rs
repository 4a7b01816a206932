//! Tests for `ContainerSpec` parsing and validation.

use super::*;

fn base() -> ContainerSpec {
    ContainerSpec::new("busybox", vec!["sh".into()])
}

/// Validates `spec` and returns the first error's (code, field).
fn refusal(spec: &ContainerSpec) -> (&'static str, String) {
    let err = spec.validate().expect_err("spec should be refused");
    (err.code(), err.field().to_owned())
}

#[test]
fn minimal_json_gets_defaults() {
    let spec: ContainerSpec = serde_json::from_str(r#"{"image":"busybox","cmd":["sh"]}"#).unwrap();
    assert_eq!(spec, base());
    assert!(spec.validate().is_ok());
    assert_eq!(spec.namespaces.user, NsMode::Private);
    assert!(
        !spec.init,
        "the command is PID 1 unless asked, as with docker"
    );
}

#[test]
fn full_json_round_trips() {
    let json = r#"{
        "image": "busybox", "name": "web", "hostname": "web.local",
        "cmd": ["sh", "-c", "echo hi"], "env": ["A=1", "B="], "workdir": "/tmp",
        "tty": true, "init": false, "memory": "64m", "cpus": 0.5, "pids_limit": 100,
        "namespaces": {"net": "host", "ipc": "container:db", "user": "private"}
    }"#;
    let spec: ContainerSpec = serde_json::from_str(json).unwrap();
    assert_eq!(spec.memory, Some(MemorySize(64 << 20)));
    assert!(!spec.init);
    assert_eq!(spec.namespaces.ipc, NsMode::Container("db".into()));
    assert!(spec.validate().is_ok(), "{:?}", spec.validate());
    let out = serde_json::to_value(&spec).unwrap();
    assert_eq!(out["memory"], 67108864);
    assert_eq!(out["namespaces"]["net"], "host");
    let back: ContainerSpec = serde_json::from_value(out).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn unknown_fields_are_refused() {
    assert!(
        serde_json::from_str::<ContainerSpec>(r#"{"image":"x","cmd":["a"],"Cmd":[]}"#).is_err()
    );
    assert!(
        serde_json::from_str::<ContainerSpec>(r#"{"cmd":["a"]}"#).is_err(),
        "image required"
    );
}

#[test]
fn image_rules() {
    for good in ["busybox", "library/busybox:1.36", "my-img_2.0"] {
        let mut s = base();
        s.image = good.into();
        assert!(s.validate().is_ok(), "{good}");
    }
    for bad in [
        "", "BusyBox", "a b", "../etc", "a//b", "/abs", "a/./b", "x\u{e9}",
    ] {
        let mut s = base();
        s.image = bad.into();
        assert_eq!(refusal(&s), ("invalid_image", "image".into()), "{bad:?}");
    }
}

#[test]
fn name_rules() {
    let mut s = base();
    for good in ["a", "web-1", "A.b_c", &"x".repeat(63)] {
        s.name = Some(good.into());
        assert!(s.validate().is_ok(), "{good}");
    }
    for bad in ["", "-a", "_a", ".a", "a b", "a/b", &"x".repeat(64)] {
        s.name = Some(bad.into());
        assert_eq!(refusal(&s), ("invalid_name", "name".into()), "{bad:?}");
    }
}

#[test]
fn hostname_rules() {
    let mut s = base();
    let long_ok = ["a".repeat(63).as_str(); 3].join(".") + "." + &"b".repeat(61);
    assert_eq!(long_ok.len(), 253);
    for good in ["box", "my-box", "a.b.c", "Box1", &long_ok] {
        s.hostname = Some(good.into());
        assert!(s.validate().is_ok(), "{good}");
    }
    for bad in [
        "",
        "a/b",
        "-a",
        "a-",
        "a..b",
        "a.",
        "a_b",
        &"a".repeat(64),
        &(long_ok.clone() + "b"),
    ] {
        s.hostname = Some(bad.into());
        let err = s.validate().unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("invalid_hostname", "hostname"),
            "{bad:?}"
        );
        assert!(err.to_string().starts_with("hostname: "), "{err}");
    }
}

#[test]
fn hostname_needs_private_uts() {
    let mut s = base();
    s.hostname = Some("box".into());
    s.namespaces.uts = NsMode::Host;
    assert_eq!(refusal(&s), ("conflicting_options", "hostname".into()));
}

#[test]
fn cmd_rules() {
    let mut s = base();
    s.cmd = vec![];
    assert!(s.validate().is_ok(), "no command: the image's");
    s.cmd = vec!["".into(), "x".into()];
    assert_eq!(refusal(&s), ("empty_command", "cmd".into()));
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("empty command"));
    s.cmd = vec!["sh".into(), "".into()];
    assert!(s.validate().is_ok(), "empty later arguments are fine");
}

#[test]
fn nul_bytes_refused_everywhere() {
    type Mutation = fn(&mut ContainerSpec);
    let cases: Vec<(Mutation, &str)> = vec![
        (|s| s.image = "bu\0sy".into(), "image"),
        (|s| s.name = Some("a\0".into()), "name"),
        (|s| s.hostname = Some("a\0".into()), "hostname"),
        (|s| s.cmd = vec!["sh".into(), "a\0b".into()], "cmd[1]"),
        (|s| s.env = vec!["A=1".into(), "B=\0".into()], "env[1]"),
        (|s| s.workdir = Some("/a\0".into()), "workdir"),
        (
            |s| s.namespaces.net = NsMode::Container("a\0".into()),
            "namespaces.net",
        ),
    ];
    for (mutate, field) in cases {
        let mut s = base();
        mutate(&mut s);
        assert_eq!(refusal(&s), ("nul_byte", field.into()));
    }
}

#[test]
fn env_rules() {
    let mut s = base();
    s.env = vec!["A=1".into(), "B=".into(), "C==x".into()];
    assert!(s.validate().is_ok());
    s.env = vec!["A=1".into(), "=1".into()];
    assert_eq!(refusal(&s), ("invalid_env", "env[1]".into()));
    s.env = vec!["NOVALUE".into()];
    assert_eq!(refusal(&s), ("invalid_env", "env[0]".into()));
}

#[test]
fn workdir_must_be_absolute() {
    let mut s = base();
    s.workdir = Some("/srv/app".into());
    assert!(s.validate().is_ok());
    for bad in ["", "srv", "./x"] {
        s.workdir = Some(bad.into());
        assert_eq!(
            refusal(&s),
            ("invalid_workdir", "workdir".into()),
            "{bad:?}"
        );
    }
}

#[test]
fn memory_bounds() {
    let mut s = base();
    s.memory = Some(MemorySize(MIN_MEMORY));
    assert!(s.validate().is_ok());
    s.memory = Some(MemorySize(MAX_MEMORY));
    assert!(s.validate().is_ok());
    s.memory = Some(MemorySize(MIN_MEMORY - 1));
    assert_eq!(refusal(&s), ("memory_too_small", "memory".into()));
    s.memory = Some(MemorySize(MAX_MEMORY + 1));
    assert_eq!(refusal(&s), ("memory_too_large", "memory".into()));
    assert!(s.validate().unwrap_err().message().contains("absurd"));
}

#[test]
fn cpus_bounds() {
    let mut s = base();
    for good in [0.01, 0.5, 1.0, 1024.0] {
        s.cpus = Some(good);
        assert!(s.validate().is_ok(), "{good}");
    }
    for bad in [0.0, 0.001, -1.0, 1024.5, f64::NAN, f64::INFINITY] {
        s.cpus = Some(bad);
        assert_eq!(refusal(&s), ("invalid_cpus", "cpus".into()), "{bad}");
    }
}

#[test]
fn pids_bounds() {
    let mut s = base();
    for good in [1, 100, MAX_PIDS] {
        s.pids_limit = Some(good);
        assert!(s.validate().is_ok(), "{good}");
    }
    s.pids_limit = Some(0);
    assert_eq!(refusal(&s), ("invalid_pids_limit", "pids_limit".into()));
    assert!(s
        .validate()
        .unwrap_err()
        .message()
        .contains("use no limit instead"));
    for bad in [-1, MAX_PIDS + 1] {
        s.pids_limit = Some(bad);
        assert_eq!(
            refusal(&s),
            ("invalid_pids_limit", "pids_limit".into()),
            "{bad}"
        );
    }
}

#[test]
fn namespace_rules() {
    let mut s = base();
    s.namespaces.user = NsMode::Container("other".into());
    s.namespaces.net = NsMode::Host;
    s.namespaces.time = NsMode::Host;
    assert!(s.validate().is_ok(), "user: container:X is allowed");
    s.namespaces.pid = NsMode::Container("bad name".into());
    assert_eq!(refusal(&s), ("invalid_namespace", "namespaces.pid".into()));
    s.namespaces.pid = NsMode::Private;
    s.namespaces.mnt = NsMode::Container("x".into());
    assert!(
        s.validate().is_ok(),
        "joining another container's files is allowed"
    );
    s.namespaces.mnt = NsMode::Host;
    assert_eq!(
        refusal(&s),
        ("unsupported_namespace", "namespaces.mnt".into())
    );
}

#[test]
fn problems_lists_every_field() {
    let mut s = base();
    s.image = String::new();
    s.cmd = vec![String::new()];
    s.pids_limit = Some(0);
    let codes: Vec<_> = s.problems().iter().map(SpecError::code).collect();
    assert_eq!(
        codes,
        ["invalid_image", "empty_command", "invalid_pids_limit"]
    );
}

#[test]
fn capabilities_are_checked_and_normalised() {
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.cap_add = vec!["sys_admin".into(), "CAP_NET_RAW".into(), "ALL".into()];
    spec.cap_drop = vec!["MKNOD".into()];
    assert!(spec.validate().is_ok());
    assert_eq!(
        normalize_capability("cap_sys_admin").as_deref(),
        Some("SYS_ADMIN")
    );
    assert_eq!(normalize_capability("all").as_deref(), Some("ALL"));
    spec.cap_drop.push("FLY".into());
    let err = spec.validate().unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_capability", "cap_drop[1]")
    );
    let back: ContainerSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn published_ports_parse_and_are_checked() {
    assert_eq!(
        PortMapping::parse("8080:80"),
        Some(PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp"
        })
    );
    assert_eq!(PortMapping::parse("5353:53/udp").unwrap().protocol, "udp");
    for bad in ["80", "0:80", "70000:80", "a:b", "80:80/sctp", ":80"] {
        assert_eq!(PortMapping::parse(bad), None, "{bad}");
    }
    let mut spec = ContainerSpec::new("busybox", vec!["sh".into()]);
    spec.publish = vec!["8080:80".into(), "oops".into()];
    let err = spec.validate().unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_publish", "publish[1]"));
    spec.publish = vec!["8080:80".into()];
    spec.namespaces.net = NsMode::Host;
    assert_eq!(spec.validate().unwrap_err().field(), "publish");
}

#[test]
fn numbers_survive_a_json_round_trip_exactly() {
    // Found by `cargo fuzz` (spec_validate): without serde_json's float_roundtrip this came back
    // one bit off, so a spec could differ after the page sent it.
    for text in [
        r#"{"image":"a","cpus":20666666666667108864.0}"#,
        r#"{"image":"a","cpus":94.64851271795993}"#,
    ] {
        let spec: ContainerSpec = serde_json::from_str(text).unwrap();
        let again: ContainerSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(spec, again, "{text}");
    }
}

#[test]
fn volumes_are_checked_by_entry() {
    let mut spec = base();
    spec.volumes = vec!["data:/data".into(), "cache:/var/cache:ro".into()];
    assert!(spec.validate().is_ok(), "{:?}", spec.validate());
    assert_eq!(spec.volume_mounts()[1].name, "cache");
    assert!(spec.volume_mounts()[1].read_only);
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["volumes"][0], "data:/data");
    assert_eq!(serde_json::from_value::<ContainerSpec>(json).unwrap(), spec);
    assert!(
        serde_json::to_value(base())
            .unwrap()
            .get("volumes")
            .is_none(),
        "an empty list is left out"
    );
    for bad in [
        "data",
        "bad name:/x",
        "data:relative",
        "data:/",
        "data:/proc/x",
    ] {
        spec.volumes = vec!["ok:/ok".into(), bad.into()];
        assert_eq!(
            refusal(&spec),
            ("invalid_volume", "volumes[1]".into()),
            "{bad}"
        );
    }
    spec.volumes = vec!["a:/x".into(), "b:/x:ro".into()];
    assert_eq!(refusal(&spec), ("invalid_volume", "volumes[1]".into()));
    spec.volumes = vec!["a:/x\0".into()];
    assert_eq!(refusal(&spec), ("nul_byte", "volumes[0]".into()));
    spec.volumes = vec!["a:/x".into()];
    spec.namespaces.mnt = NsMode::Container("other".into());
    assert_eq!(refusal(&spec), ("conflicting_options", "volumes".into()));
}

#[test]
fn the_runtime_is_isolab_runc_or_crun() {
    let mut spec = base();
    assert_eq!(spec.runtime_name(), "isolab");
    assert!(serde_json::to_value(&spec)
        .unwrap()
        .get("runtime")
        .is_none());
    for name in RUNTIMES {
        spec.runtime = Some(name.into());
        assert!(spec.validate().is_ok(), "{name}");
        assert_eq!(spec.runtime_name(), name);
    }
    spec.runtime = Some("youki".into());
    assert_eq!(refusal(&spec), ("invalid_runtime", "runtime".into()));
    spec.runtime = Some("runc".into());
    spec.init = true;
    assert_eq!(refusal(&spec), ("conflicting_options", "init".into()));
    spec.init = false;
    spec.namespaces.mnt = NsMode::Container("other".into());
    assert_eq!(
        refusal(&spec),
        ("conflicting_options", "namespaces.mnt".into())
    );
    spec.runtime = Some("isolab".into());
    assert!(spec.validate().is_ok());
}

#[test]
fn network_none_is_for_a_private_netns_without_ports() {
    let mut spec = base();
    assert!(!spec.network_none());
    spec.network = Some("none".into());
    assert!(spec.network_none());
    assert!(spec.validate().is_ok());
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["network"], "none");
    spec.network = Some("default".into());
    assert!(spec.validate().is_ok() && !spec.network_none());
    spec.network = Some("host".into());
    assert_eq!(refusal(&spec), ("invalid_network", "network".into()));
    spec.network = Some("none".into());
    spec.publish = vec!["8080:80".into()];
    assert_eq!(refusal(&spec), ("conflicting_options", "publish".into()));
    spec.publish.clear();
    spec.namespaces.net = NsMode::Container("alpha".into());
    assert_eq!(refusal(&spec), ("conflicting_options", "network".into()));
}
