//! The starting point every container spec is built from: what `runc spec`
//! writes (mounts, masked and readonly paths, rlimits, deny-all devices,
//! no_new_privileges), written out explicitly because `oci_spec`'s own
//! `Spec::default()` differs (hostname "youki", cgroup namespace, 3 caps in
//! every set...). Differences from `runc spec`, on purpose:
//! - root is writable (`readonly: false`);
//! - docker's default capabilities (see [`default_capabilities`]);
//! - docker's two extra masked paths;
//! - the default device nodes and their cgroup allow rules, which runc adds
//!   implicitly (`specconv.AllowedDevices`), are written out so the runtime
//!   needs no hidden defaults.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxResources, Mount, PosixRlimitBuilder, PosixRlimitType, Process, Root,
    Spec, User,
};

/// `PATH` given to every container unless the user sets their own.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The mounts of `runc spec`, in its order.
pub fn default_mounts() -> Vec<Mount> {
    let secure = ["nosuid", "noexec", "nodev"];
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[&secure[..], &["mode=1777", "size=65536k"]].concat(),
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &secure),
        mount("/sys", "sysfs", "sysfs", &[&secure[..], &["ro"]].concat()),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[&secure[..], &["relatime", "ro"]].concat(),
        ),
    ]
}

/// A mount entry; no `options` key at all when `options` is empty (as runc writes `/proc`).
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(PathBuf::from(source)));
    if !options.is_empty() {
        m.set_options(Some(options.iter().map(|o| (*o).to_owned()).collect()));
    }
    m
}

/// runc's masked paths plus docker's `/proc/interrupts` and `/sys/devices/virtual/powercap`.
pub fn default_masked_paths() -> Vec<String> {
    [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
        "/proc/interrupts",
        "/sys/devices/virtual/powercap",
    ]
    .map(String::from)
    .to_vec()
}

/// runc's readonly paths.
pub fn default_readonly_paths() -> Vec<String> {
    [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    .map(String::from)
    .to_vec()
}

/// docker's default capability set.
///
/// runc's template keeps only AUDIT_WRITE, KILL and NET_BIND_SERVICE: too few
/// for a playground (no chown, no setuid, no ping, no chroot...). People
/// trying things here expect what `docker run` gives them, so we use docker's
/// 14. They go in bounding/effective/permitted only: inheritable and ambient
/// stay empty (as docker does since CVE-2022-24769) so an exec'd non-root
/// program does not silently inherit them.
pub fn default_capabilities() -> LinuxCapabilities {
    let set: Capabilities = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Mknod,
        Capability::NetRaw,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
    .into_iter()
    .collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps
}

/// The device nodes every container gets: (path, major, minor).
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Device nodes to create in `/dev` (mode 0666, owned by root).
pub fn default_devices() -> Vec<LinuxDevice> {
    DEFAULT_DEVICES
        .iter()
        .map(|&(path, major, minor)| {
            let mut d = LinuxDevice::default();
            d.set_path(PathBuf::from(path));
            d.set_typ(LinuxDeviceType::C);
            d.set_major(major);
            d.set_minor(minor);
            d.set_file_mode(Some(0o666));
            d.set_uid(Some(0));
            d.set_gid(Some(0));
            d
        })
        .collect()
}

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(typ);
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

/// Device cgroup rules: runc's deny-all first, then docker's allow list
/// (mknod of any node, use of the default nodes, `/dev/ptmx` and `/dev/pts/*`).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![
        device_rule(false, None, None, None, "rwm"),
        device_rule(true, c, None, None, "m"),
        device_rule(true, Some(LinuxDeviceType::B), None, None, "m"),
    ];
    rules.extend(
        DEFAULT_DEVICES
            .iter()
            .map(|&(_, major, minor)| device_rule(true, c, Some(major), Some(minor), "rwm")),
    );
    rules.push(device_rule(true, c, Some(5), Some(2), "rwm")); // /dev/ptmx
    rules.push(device_rule(true, c, Some(136), None, "rwm")); // /dev/pts/*
    rules
}

/// runc's process: root, `sh`, `PATH` only, NOFILE 1024, no_new_privileges.
pub fn base_process() -> Process {
    // PosixRlimit has no setters; its builder has a default for every field
    // and no validator, so build() cannot fail.
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("rlimit builder cannot fail");

    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_user(User::default());
    process.set_args(Some(vec!["sh".to_owned()]));
    process.set_env(Some(vec![DEFAULT_PATH.to_owned()]));
    process.set_cwd(PathBuf::from("/"));
    process.set_capabilities(Some(default_capabilities()));
    process.set_rlimits(Some(vec![rlimit]));
    process.set_no_new_privileges(Some(true));
    process
}

/// runc's `linux` section (no namespaces yet) plus the default devices.
pub fn base_linux() -> Linux {
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(default_device_rules()));

    let mut linux = Linux::default();
    linux.set_resources(Some(resources));
    linux.set_namespaces(Some(Vec::new()));
    linux.set_devices(Some(default_devices()));
    linux.set_masked_paths(Some(default_masked_paths()));
    linux.set_readonly_paths(Some(default_readonly_paths()));
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl(None);
    linux.set_rootfs_propagation(None);
    linux.set_mount_label(None);
    linux
}

/// The runc-like base spec (args `sh`, hostname unset; [`super::to_oci`] fills those in).
pub fn base_spec() -> Spec {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(false));

    let mut spec = Spec::default();
    spec.set_version("1.0.2-dev".to_owned());
    spec.set_process(Some(base_process()));
    spec.set_root(Some(root));
    spec.set_hostname(None);
    spec.set_mounts(Some(default_mounts()));
    spec.set_annotations(None);
    spec.set_linux(Some(base_linux()));
    spec
}
