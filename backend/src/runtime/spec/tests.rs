//! Tests for the OCI spec builder.

use super::*;
use isolab_shared::spec::MemorySize;
use oci_spec::runtime::{Capability, LinuxNamespaceType as T};

/// What `runc spec` (runc 1.1.5) writes, captured once; never run runc in tests.
const RUNC_SPEC: &str = include_str!("runc_spec.json");

fn no_containers(_: &str) -> Option<i32> {
    None
}

fn ctx() -> SpecContext<'static> {
    SpecContext {
        id: "0123456789abcdef0123".into(),
        allow_host: false,
        have_time_ns: true,
        uid_base: Some(100_000),
        host_cpus: 4,
        host_memory: 8 << 30,
        resolve: &no_containers,
        image: &BUSYBOX,
        user: None,
        volume_root: None,
    }
}

/// What the busybox image says: its PATH and `sh`.
static BUSYBOX: std::sync::LazyLock<ImageSettings> = std::sync::LazyLock::new(|| ImageSettings {
    env: vec![DEFAULT_PATH.to_string()],
    cmd: Some(vec!["sh".to_string()]),
    ..ImageSettings::default()
});

fn spec() -> ContainerSpec {
    ContainerSpec::new("busybox", vec!["sh".into(), "-c".into(), "true".into()])
}

fn ns_entries(oci: &Spec) -> Vec<(T, Option<PathBuf>)> {
    let linux = oci.linux().as_ref().unwrap();
    linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

fn mount_at<'a>(oci: &'a Spec, dest: &str) -> &'a Mount {
    let mounts = oci.mounts().as_ref().unwrap();
    mounts
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap()
}

#[test]
fn base_matches_runc_spec() {
    let runc: Spec = serde_json::from_str(RUNC_SPEC).unwrap();
    let ours = base_spec();
    assert_eq!(ours.mounts(), runc.mounts());
    let (l, rl) = (
        ours.linux().as_ref().unwrap(),
        runc.linux().as_ref().unwrap(),
    );
    assert_eq!(l.readonly_paths(), rl.readonly_paths());
    let mut want = rl.masked_paths().clone().unwrap();
    for extra in ["/proc/interrupts", "/sys/devices/virtual/powercap"] {
        if !want.iter().any(|p| p == extra) {
            want.push(extra.into());
        }
    }
    assert_eq!(l.masked_paths().as_ref().unwrap(), &want);
    let (p, rp) = (
        ours.process().as_ref().unwrap(),
        runc.process().as_ref().unwrap(),
    );
    assert_eq!(p.rlimits(), rp.rlimits());
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.cwd(), rp.cwd());
    assert_eq!(p.user(), rp.user());
    let runc_devices = rl.resources().as_ref().unwrap().devices().as_ref().unwrap();
    let our_devices = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
    assert_eq!(our_devices[0], runc_devices[0], "deny-all comes first");
    assert!(!our_devices[0].allow());
    assert_eq!(ours.version(), runc.version());
    let root = ours.root().as_ref().unwrap();
    assert_eq!(
        (root.path().as_path(), root.readonly()),
        (Path::new("rootfs"), Some(false))
    );
}

#[test]
fn docker_capabilities_not_inheritable() {
    let caps = default_capabilities();
    for set in [caps.bounding(), caps.effective(), caps.permitted()] {
        let set = set.as_ref().unwrap();
        assert_eq!(set.len(), 14);
        for c in [
            Capability::Chown,
            Capability::NetRaw,
            Capability::SysChroot,
            Capability::AuditWrite,
        ] {
            assert!(set.contains(&c), "{c}");
        }
        assert!(!set.contains(&Capability::SysAdmin));
    }
    assert!(caps.inheritable().is_none() && caps.ambient().is_none());
}

#[test]
fn applies_process_choices() {
    let mut s = spec();
    s.tty = true;
    s.workdir = Some("/tmp".into());
    s.env = vec![
        "PATH=/bin".into(),
        "A=1".into(),
        "A=2".into(),
        "TERM=vt100".into(),
    ];
    let oci = to_oci(&s, &ctx()).unwrap();
    let p = oci.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &s.cmd);
    assert_eq!(p.cwd(), Path::new("/tmp"));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(
        p.env().as_ref().unwrap(),
        &["HOSTNAME=0123456789ab", "PATH=/bin", "A=2", "TERM=vt100"]
    );
    assert_eq!(oci.hostname().as_deref(), Some("0123456789ab"));
}

#[test]
fn defaults_without_tty() {
    let oci = to_oci(&spec(), &ctx()).unwrap();
    let p = oci.process().as_ref().unwrap();
    assert_eq!(
        p.env().as_ref().unwrap(),
        &[DEFAULT_PATH, "HOSTNAME=0123456789ab"]
    );
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.terminal(), Some(false));
    let linux = oci.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/isolab/0123456789abcdef0123"))
    );
    let uid = linux
        .uid_mappings()
        .as_ref()
        .expect("a private user ns by default");
    assert_eq!((uid[0].container_id(), uid[0].host_id()), (0, 100_000));
    let res = linux.resources().as_ref().unwrap();
    assert!(res.memory().is_none() && res.cpu().is_none() && res.pids().is_none());
}

#[test]
fn hostname_choice() {
    let mut s = spec();
    s.name = Some("web".into());
    assert_eq!(
        to_oci(&s, &ctx()).unwrap().hostname().as_deref(),
        Some("web")
    );
    s.name = Some("my_app".into()); // '_' is not valid in a hostname
    assert_eq!(
        to_oci(&s, &ctx()).unwrap().hostname().as_deref(),
        Some("0123456789ab")
    );
    s.hostname = Some("box.local".into());
    assert_eq!(
        to_oci(&s, &ctx()).unwrap().hostname().as_deref(),
        Some("box.local")
    );
    let mut s = spec();
    s.namespaces.uts = NsMode::Host;
    let c = SpecContext {
        allow_host: true,
        ..ctx()
    };
    let oci = to_oci(&s, &c).unwrap();
    assert!(
        oci.hostname().is_none(),
        "no hostname without a private uts ns"
    );
    let env = oci.process().as_ref().unwrap().env().clone().unwrap();
    assert!(!env.iter().any(|e| e.starts_with("HOSTNAME=")));
}

#[test]
fn applies_limits() {
    let mut s = spec();
    s.memory = Some(MemorySize(64 << 20));
    s.cpus = Some(0.5);
    s.pids_limit = Some(64);
    let oci = to_oci(&s, &ctx()).unwrap();
    let res = oci.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let mem = res.memory().unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(64 << 20), Some(64 << 20)));
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(res.pids().unwrap().limit(), 64);
    assert!(!res.devices().as_ref().unwrap()[0].allow(), "deny-all kept");
}

#[test]
fn limits_beyond_host_refused() {
    let mut s = spec();
    s.cpus = Some(5.0);
    assert_eq!(to_oci(&s, &ctx()).unwrap_err().code(), "cpus_exceed_host");
    let c = SpecContext {
        host_cpus: 0,
        ..ctx()
    };
    assert!(to_oci(&s, &c).is_ok(), "0 means unknown");
    let mut s = spec();
    s.memory = Some(MemorySize(9 << 30));
    assert_eq!(
        to_oci(&s, &ctx()).unwrap_err().code(),
        "memory_exceeds_host"
    );
}

#[test]
fn invalid_spec_and_id_refused() {
    let mut s = spec();
    s.hostname = Some("a/b".into());
    let err = to_oci(&s, &ctx()).unwrap_err();
    assert_eq!(err.code(), "invalid_hostname");
    assert!(err.to_string().contains("hostname"), "{err}");
    let c = SpecContext {
        id: "../x".into(),
        ..ctx()
    };
    assert_eq!(to_oci(&spec(), &c).unwrap_err().code(), "invalid_id");
}

#[test]
fn default_namespaces() {
    let oci = to_oci(&spec(), &ctx()).unwrap();
    let want: Vec<_> = [
        T::Pid,
        T::Network,
        T::Ipc,
        T::Uts,
        T::Mount,
        T::Cgroup,
        T::User,
        T::Time,
    ]
    .into_iter()
    .map(|t| (t, None))
    .collect();
    assert_eq!(ns_entries(&oci), want);
    let c = SpecContext {
        have_time_ns: false,
        ..ctx()
    };
    let oci = to_oci(&spec(), &c).unwrap();
    assert!(!ns_entries(&oci).iter().any(|(t, _)| *t == T::Time));
}

#[test]
fn host_namespaces_need_permission() {
    let mut s = spec();
    s.namespaces.net = NsMode::Host;
    let err = to_oci(&s, &ctx()).unwrap_err();
    assert_eq!(err.code(), "host_namespace_not_allowed");
    assert!(err.to_string().starts_with("namespaces.net:"), "{err}");
    let c = SpecContext {
        allow_host: true,
        ..ctx()
    };
    let oci = to_oci(&s, &c).unwrap();
    assert!(!ns_entries(&oci).iter().any(|(t, _)| *t == T::Network));
    // Time may always stay the host's; user only where host access is allowed (its root
    // would be the host's root).
    let mut s = spec();
    s.namespaces.time = NsMode::Host;
    let oci = to_oci(&s, &ctx()).unwrap();
    assert!(!ns_entries(&oci).iter().any(|(t, _)| *t == T::Time));
    s.namespaces.user = NsMode::Host;
    let err = to_oci(&s, &ctx()).unwrap_err();
    assert_eq!(err.code(), "host_namespace_not_allowed");
    assert_eq!(err.field().as_deref(), Some("namespaces.user"));
    let oci = to_oci(&s, &c).unwrap();
    assert!(!ns_entries(&oci).iter().any(|(t, _)| *t == T::User));
    assert!(oci.linux().as_ref().unwrap().uid_mappings().is_none());
}

#[test]
fn a_container_that_joins_another_joins_its_user_namespace() {
    let resolve = |name: &str| match name {
        "db" => Some(4242),
        "web" => Some(4343),
        _ => None,
    };
    let c = SpecContext {
        resolve: &resolve,
        uid_base: None, // no range of its own is needed
        ..ctx()
    };
    let mut s = spec();
    s.namespaces.pid = NsMode::Container("db".into());
    let oci = to_oci(&s, &c).unwrap();
    let entries = ns_entries(&oci);
    assert!(entries.contains(&(T::User, Some("/proc/4242/ns/user".into()))));
    assert!(oci.linux().as_ref().unwrap().uid_mappings().is_none());
    assert_eq!(
        mount_at(&oci, "/proc").typ().as_deref(),
        Some("proc"),
        "its own /proc of the joined PID namespace, not the host's"
    );
    s.namespaces.net = NsMode::Container("web".into());
    let err = to_oci(&s, &c).unwrap_err();
    assert_eq!(err.code(), "ambiguous_user_namespace");
    assert_eq!(err.field().as_deref(), Some("namespaces.user"));
    s.namespaces.user = NsMode::Container("db".into());
    assert!(to_oci(&s, &c).is_ok(), "an explicit choice is taken");
}

#[test]
fn container_namespaces_resolve_to_proc_paths() {
    let resolve = |name: &str| (name == "db").then_some(4242);
    let c = SpecContext {
        resolve: &resolve,
        ..ctx()
    };
    let mut s = spec();
    s.namespaces.net = NsMode::Container("db".into());
    s.namespaces.ipc = NsMode::Container("db".into());
    s.namespaces.mnt = NsMode::Container("db".into());
    s.namespaces.user = NsMode::Host;
    let c = SpecContext {
        allow_host: true,
        ..c
    };
    let oci = to_oci(&s, &c).unwrap();
    let entries = ns_entries(&oci);
    assert!(entries.contains(&(T::Network, Some("/proc/4242/ns/net".into()))));
    assert!(entries.contains(&(T::Ipc, Some("/proc/4242/ns/ipc".into()))));
    assert!(entries.contains(&(T::Mount, Some("/proc/4242/ns/mnt".into()))));
    s.namespaces.pid = NsMode::Container("gone".into());
    let err = to_oci(&s, &c).unwrap_err();
    assert_eq!(err.code(), "unknown_container");
    assert!(err.to_string().contains("\"gone\""), "{err}");
}

#[test]
fn private_user_namespace_maps_ids() {
    let mut s = spec();
    s.namespaces.user = NsMode::Private;
    let oci = to_oci(&s, &ctx()).unwrap();
    let linux = oci.linux().as_ref().unwrap();
    for maps in [linux.uid_mappings(), linux.gid_mappings()] {
        let m = maps.as_ref().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].container_id(), m[0].host_id(), m[0].size()),
            (0, 100_000, 65536)
        );
    }
    assert!(ns_entries(&oci).contains(&(T::User, None)));
    assert_eq!(
        mount_at(&oci, "/sys").typ().as_deref(),
        Some("sysfs"),
        "private net: real sysfs"
    );

    let c = SpecContext {
        uid_base: None,
        ..ctx()
    };
    assert_eq!(to_oci(&s, &c).unwrap_err().code(), "no_uid_range");
    let c = SpecContext {
        uid_base: Some(u32::MAX - 100),
        ..ctx()
    };
    assert_eq!(to_oci(&s, &c).unwrap_err().code(), "no_uid_range");
}

#[test]
fn user_namespace_with_host_net_binds_sys() {
    let mut s = spec();
    s.namespaces.user = NsMode::Private;
    s.namespaces.net = NsMode::Host;
    let c = SpecContext {
        allow_host: true,
        ..ctx()
    };
    let oci = to_oci(&s, &c).unwrap();
    let runc: Spec = serde_json::from_str(RUNC_SPEC).unwrap();
    let sys = mount_at(&oci, "/sys");
    assert_eq!(sys.typ().as_deref(), Some("none"));
    assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
    assert_eq!(
        sys.options().as_ref().unwrap(),
        &["rbind", "nosuid", "noexec", "nodev", "ro"]
    );
    assert_eq!(
        mount_at(&oci, "/proc"),
        mount_at(&runc, "/proc"),
        "others untouched"
    );
    assert_eq!(
        mount_at(&oci, "/sys/fs/cgroup"),
        mount_at(&runc, "/sys/fs/cgroup")
    );
    // Without a user namespace sysfs can be mounted whatever the net ns.
    s.namespaces.user = NsMode::Host;
    assert_eq!(
        mount_at(&to_oci(&s, &c).unwrap(), "/sys").typ().as_deref(),
        Some("sysfs")
    );
}

#[test]
fn write_bundle_writes_pretty_config() {
    let dir = tempfile::tempdir().unwrap();
    let oci = to_oci(&spec(), &ctx()).unwrap();
    write_bundle(dir.path(), &oci).unwrap();
    let text = fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(text.contains("\n  \"ociVersion\""), "pretty-printed");
    let back: Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, oci);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.json"], "no temporary file left");
}

fn bounding(oci: &Spec) -> Capabilities {
    let caps = oci
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let set = caps.bounding().clone().unwrap();
    assert_eq!(caps.effective().as_ref(), Some(&set));
    assert_eq!(caps.permitted().as_ref(), Some(&set));
    set
}

#[test]
fn capabilities_follow_docker_add_and_drop() {
    let defaults = default_capabilities().bounding().clone().unwrap();
    assert_eq!(bounding(&to_oci(&spec(), &ctx()).unwrap()), defaults);

    let mut s = spec();
    s.cap_drop = vec!["mknod".into(), "CAP_NET_RAW".into()];
    let set = bounding(&to_oci(&s, &ctx()).unwrap());
    assert_eq!(set.len(), defaults.len() - 2);
    assert!(!set.contains(&Capability::Mknod) && !set.contains(&Capability::NetRaw));

    s.cap_drop = vec!["ALL".into()];
    s.cap_add = vec!["NET_RAW".into()];
    let set = bounding(&to_oci(&s, &ctx()).unwrap());
    assert_eq!(set, [Capability::NetRaw].into_iter().collect());
}

#[test]
fn an_extra_capability_is_granted_in_a_private_user_namespace() {
    let mut s = spec();
    s.cap_add = vec!["KILL".into(), "SYS_ADMIN".into()];
    // A private user namespace (the default): granted, it is worth nothing on the host.
    let set = bounding(&to_oci(&s, &ctx()).unwrap());
    assert!(set.contains(&Capability::SysAdmin));

    // The local CLI (host access allowed) may grant it without one, as docker does.
    s.namespaces.user = NsMode::Host;
    let host = SpecContext {
        allow_host: true,
        ..ctx()
    };
    assert!(bounding(&to_oci(&s, &host).unwrap()).contains(&Capability::SysAdmin));
    s.cap_add = vec!["ALL".into()];
    assert_eq!(
        bounding(&to_oci(&s, &host).unwrap()).len(),
        CAPABILITIES.len()
    );
}

#[test]
fn volumes_are_bind_mounts_idmapped_with_the_container_s_own_range() {
    let mut s = spec();
    s.volumes = vec!["data:/data".into(), "conf:/etc/app:ro".into()];
    let err = to_oci(&s, &ctx()).unwrap_err();
    assert_eq!(err.code(), "volumes_unavailable");
    assert_eq!(err.field().as_deref(), Some("volumes"));
    let root = Path::new("/run/isolab/volumes/local");
    let c = SpecContext {
        volume_root: Some(root),
        ..ctx()
    };
    let oci = to_oci(&s, &c).unwrap();
    let data = mount_at(&oci, "/data");
    assert_eq!(data.typ().as_deref(), Some("bind"));
    assert_eq!(data.source().as_deref(), Some(root.join("data").as_path()));
    assert_eq!(
        data.options().as_deref().unwrap(),
        ["bind", "nosuid", "nodev", "rw", "idmap"]
    );
    let map = &data.uid_mappings().as_ref().unwrap()[0];
    assert_eq!(
        (map.container_id(), map.host_id(), map.size()),
        (0, 100_000, 65536)
    );
    assert_eq!(data.gid_mappings(), data.uid_mappings());
    assert!(is_idmapped(data));
    let conf = mount_at(&oci, "/etc/app");
    assert!(conf.options().as_ref().unwrap().contains(&"ro".to_string()));
    assert_eq!(
        oci.mounts().as_ref().unwrap().last().unwrap().destination(),
        Path::new("/etc/app"),
        "after the defaults, in the order given"
    );
    // With the host's user namespace: a plain bind.
    s.namespaces.user = NsMode::Host;
    let host = SpecContext {
        allow_host: true,
        ..c
    };
    let oci = to_oci(&s, &host).unwrap();
    let data = mount_at(&oci, "/data");
    assert!(!is_idmapped(data));
    assert_eq!(
        data.options().as_deref().unwrap(),
        ["bind", "nosuid", "nodev", "rw"]
    );
    assert!(!is_idmapped(mount_at(&oci, "/proc")));
}

#[test]
fn a_volume_of_a_container_in_another_s_user_namespace_is_idmapped_with_it() {
    let resolve = |name: &str| (name == "db").then_some(4242);
    let c = SpecContext {
        resolve: &resolve,
        uid_base: None,
        volume_root: Some(Path::new("/v")),
        ..ctx()
    };
    let mut s = spec();
    s.namespaces.pid = NsMode::Container("db".into());
    s.volumes = vec!["data:/data".into()];
    let oci = to_oci(&s, &c).unwrap();
    let data = mount_at(&oci, "/data");
    assert!(data.uid_mappings().is_none(), "the joined namespace's own");
    assert!(is_idmapped(data));
}
