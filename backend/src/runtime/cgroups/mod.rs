//! Cgroup layer: one [`CgroupManager`] trait over cgroup v1 (including hybrid hosts, where the
//! v1 controllers sit next to a mostly empty cgroup2 mount) and pure cgroup v2.
//!
//! Every container gets `<hierarchy>/isolab/<id>`; the `isolab` parent is made on demand.
//! [`detect`] picks the backend for the running host; [`new_v1`] and [`new_v2`] build one
//! against any folder (tests use fake cgroupfs trees in a tempdir).

pub mod device_filter;
#[cfg(test)]
mod host_tests;
mod stats;
mod v1;
mod v2;

pub use stats::{ReadFile, Sources, Stats};
pub use v1::V1Manager;
pub use v2::V2Manager;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Name of the parent cgroup holding every container's cgroup.
pub const PARENT: &str = "isolab";
/// Usual mount point of the cgroup filesystem(s).
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";
/// How long [`CgroupManager::kill_all`] waits for a cgroup to empty.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// v1 controllers whose hierarchies hold a container (freezer and devices only when mounted).
pub const V1_CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// Which cgroup API the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Limits applied when a container's cgroup is created. `None` leaves the kernel default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes; swap is disabled too when set.
    pub memory_bytes: Option<u64>,
    /// CFS quota per period in µs; negative means unlimited.
    pub cpu_quota_us: Option<i64>,
    /// CFS period in µs (kernel default 100000).
    pub cpu_period_us: Option<u64>,
    /// Maximum number of tasks; negative means unlimited.
    pub pids_max: Option<i64>,
    /// The device rules (`linux.resources.devices`), in order: a later rule overrides an
    /// earlier one for the devices both match. Empty: the device controller is left alone.
    pub devices: Vec<DeviceRule>,
}

/// One device cgroup rule, as the OCI spec's `linux.resources.devices[]` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// `'c'` (character), `'b'` (block), or None for every kind (`a`).
    pub kind: Option<char>,
    /// Major number; None matches any (`*`).
    pub major: Option<u32>,
    /// Minor number; None matches any (`*`).
    pub minor: Option<u32>,
    /// Some of `r` (read), `w` (write), `m` (mknod), in that order.
    pub access: String,
}

impl DeviceRule {
    /// The rule in the cgroup v1 syntax (`c 1:3 rwm`, `a *:* rwm`), for `devices.allow` or
    /// `devices.deny`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.unwrap_or('a'),
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// Errors of the cgroup layer.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid container id {0:?} (want [a-z0-9]{{1,64}})")]
    InvalidId(String),
    #[error("cgroup {0} already exists")]
    AlreadyExists(PathBuf),
    #[error("cgroup {0} does not exist")]
    NotFound(PathBuf),
    #[error("cgroup controller {0} is not available")]
    ControllerMissing(String),
    #[error("no usable cgroup hierarchy found under {0}")]
    NoHierarchy(PathBuf),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: unexpected {value:?}")]
    Parse { path: PathBuf, value: String },
    #[error("device rules: {0}")]
    Devices(#[from] device_filter::DeviceFilterError),
    #[error("kill pid {pid}: {source}")]
    Kill {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("{path} still has processes {pids:?} after {timeout:?}")]
    KillTimeout {
        path: PathBuf,
        pids: Vec<i32>,
        timeout: Duration,
    },
}

impl CgroupError {
    fn io(step: &'static str, path: &Path, source: io::Error) -> Self {
        CgroupError::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Operations the runtime needs on a container's cgroup(s), for v1 and v2 alike.
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    fn version(&self) -> CgroupVersion;
    /// Create the container's cgroup(s) under the `isolab` parent and apply limits. A memory
    /// limit turns swap off too (v1 memsw = same value, v2 memory.swap.max = 0, when present).
    /// Creating an existing one is an error; on failure nothing is left behind.
    fn create(&self, id: &str, res: &Resources) -> Result<(), CgroupError>;
    /// Change a live container's limits (those `res` sets; devices are left alone), raising or
    /// lowering them.
    fn update(&self, id: &str, res: &Resources) -> Result<(), CgroupError>;
    /// The cgroup.procs files a process writes its pid (or "0") into to join: one per v1
    /// hierarchy in use (comounted ones once), a single one on v2.
    fn procs_files(&self, id: &str) -> Vec<PathBuf>;
    fn add_process(&self, id: &str, pid: i32) -> Result<(), CgroupError>;
    /// Pids in the container's cgroup (sorted, deduplicated over v1 hierarchies).
    fn pids(&self, id: &str) -> Result<Vec<i32>, CgroupError>;
    fn stats(&self, id: &str) -> Result<Stats, CgroupError>;
    /// Where [`stats`](Self::stats) reads from (failing as it does when the cgroup is gone),
    /// for a reader that reads the same container again and again (the live view).
    fn stats_sources(&self, id: &str) -> Result<Sources, CgroupError>;
    /// SIGKILL every process of the cgroup and wait (up to [`KILL_TIMEOUT`]) until it is empty.
    /// A missing cgroup is Ok.
    fn kill_all(&self, id: &str) -> Result<(), CgroupError>;
    /// Remove the container's cgroup dir(s), retrying briefly on EBUSY. Missing is Ok.
    fn remove(&self, id: &str) -> Result<(), CgroupError>;
    /// Remove the `isolab` parent(s) if no container cgroup is left in them (for gc/tests).
    /// Harmless when busy or missing.
    fn remove_parent_if_empty(&self) -> Result<(), CgroupError>;
    /// Ids of containers that have a cgroup under the `isolab` parent.
    fn list(&self) -> Result<Vec<String>, CgroupError>;
    /// Host dirs to bind read-only into the container's /sys/fs/cgroup: v1 gives
    /// (mount name like "memory" or "cpu,cpuacct", host dir of this container); v2 gives none.
    fn container_dirs(&self, id: &str) -> Vec<(String, PathBuf)>;
    /// Host path of the container's cgroup: the v2 dir, or the v1 memory hierarchy's dir
    /// (see [`V1Manager::controller_path`] for the others).
    fn path(&self, id: &str) -> PathBuf;
}

/// Detect the host's cgroup setup from `/sys/fs/cgroup` and `/proc/self/mountinfo`.
pub fn detect() -> Result<Box<dyn CgroupManager>, CgroupError> {
    detect_at(Path::new(DEFAULT_ROOT))
}

/// [`detect`] with another root: a cgroup2 mount there is used as a pure v2 host (the tests run
/// the v2 code for real against this hybrid machine's `/sys/fs/cgroup/unified`).
pub fn detect_at(root: &Path) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let mountinfo = std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))?;
    detect_from(root, &mountinfo)
}

/// [`detect`] with an explicit root and mountinfo text. Pure v2 when `root` is a cgroup2
/// filesystem; otherwise v1 (hybrid included) with the v1 controller mounts of `mountinfo`.
/// If no v1 controller is mounted, a cgroup2 mount offering `memory` is used as v2.
pub fn detect_from(root: &Path, mountinfo: &str) -> Result<Box<dyn CgroupManager>, CgroupError> {
    if is_cgroup2(root)? {
        return Ok(new_v2(root));
    }
    let mounts = parse_mountinfo(mountinfo);
    let mut v1: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut v2_candidates = Vec::new();
    for m in mounts {
        if m.fstype == "cgroup2" {
            v2_candidates.push(m.mount_point);
            continue;
        }
        for opt in m.super_options.split(',') {
            if V1_CONTROLLERS.contains(&opt) {
                // Prefer mounts below the root (first one wins otherwise).
                let better = v1
                    .get(opt)
                    .is_some_and(|p| !p.starts_with(root) && m.mount_point.starts_with(root));
                if !v1.contains_key(opt) || better {
                    v1.insert(opt.to_string(), m.mount_point.clone());
                }
            }
        }
    }
    if !v1.is_empty() {
        return Ok(new_v1(v1));
    }
    for dir in v2_candidates {
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Ok(new_v2(&dir));
        }
    }
    Err(CgroupError::NoHierarchy(root.to_path_buf()))
}

/// A v2 manager rooted at `root` (a cgroup2 mount, or a fake tree in tests).
pub fn new_v2(root: &Path) -> Box<dyn CgroupManager> {
    Box::new(V2Manager::new(root))
}

/// A v1 manager from controller name -> hierarchy mount dir (comounted controllers map to the
/// same dir). Only [`V1_CONTROLLERS`] are used; others are ignored.
pub fn new_v1(controllers: BTreeMap<String, PathBuf>) -> Box<dyn CgroupManager> {
    Box::new(V1Manager::new(controllers))
}

fn is_cgroup2(root: &Path) -> Result<bool, CgroupError> {
    let st = nix::sys::statfs::statfs(root)
        .map_err(|e| CgroupError::io("statfs", root, io::Error::from(e)))?;
    Ok(st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// One cgroup/cgroup2 line of mountinfo.
#[derive(Debug, Clone, PartialEq)]
struct CgroupMount {
    mount_point: PathBuf,
    fstype: String,
    super_options: String,
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let (Some(fstype), Some(_source), Some(super_options)) = (r.next(), r.next(), r.next())
        else {
            continue;
        };
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        out.push(CgroupMount {
            mount_point: PathBuf::from(unescape_octal(mount_point)),
            fstype: fstype.to_string(),
            super_options: super_options.to_string(),
        });
    }
    out
}

/// Undo mountinfo's `\040`-style escapes.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Refuse anything but `[a-z0-9]{1,64}` (no path traversal, no odd names).
pub fn validate_id(id: &str) -> Result<(), CgroupError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidId(id.to_string()))
    }
}

// ---- small filesystem helpers shared by v1 and v2 ----

/// A limit as cgroup files write it: the number, or `max` for none (negative).
fn limit_value(limit: i64) -> String {
    if limit >= 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|e| CgroupError::io("write", path, e))
}

/// Make `dir` (parents too) if missing.
fn ensure_dir(dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(dir).map_err(|e| CgroupError::io("mkdir", dir, e))
}

/// mkdir that fails with [`CgroupError::AlreadyExists`] when the dir is there.
fn mkdir_new(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(CgroupError::AlreadyExists(dir.to_path_buf()))
        }
        Err(e) => Err(CgroupError::io("mkdir", dir, e)),
    }
}

/// rmdir, retrying on EBUSY for about a second; a missing dir is fine.
fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
        }
    }
}

/// rmdir that ignores "not empty / busy / missing" (for the shared parent).
fn rmdir_if_unused(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) =>
        {
            Ok(())
        }
        Err(e) => Err(CgroupError::io("rmdir", dir, e)),
    }
}

/// Pids listed in a cgroup.procs file.
fn read_procs(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))?;
    text.split_whitespace()
        .map(|s| {
            s.parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                value: s.to_string(),
            })
        })
        .collect()
}

/// SIGKILL each pid; already gone is fine. Never signals ourselves or pid <= 1.
fn kill_pids(pids: &[i32]) -> Result<(), CgroupError> {
    let me = std::process::id() as i32;
    for &pid in pids {
        if pid <= 1 || pid == me {
            continue;
        }
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => return Err(CgroupError::Kill { pid, source }),
        }
    }
    Ok(())
}

/// Poll `list` until it is empty, re-killing whatever remains, up to [`KILL_TIMEOUT`].
fn kill_and_wait(
    path: &Path,
    mut list: impl FnMut() -> Result<Vec<i32>, CgroupError>,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    let mut last_kill: Option<Instant> = None;
    loop {
        let pids = list()?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::KillTimeout {
                path: path.to_path_buf(),
                pids,
                timeout: KILL_TIMEOUT,
            });
        }
        // Re-signal now and then: catches children forked before the first kill landed.
        if last_kill.is_none_or(|t| t.elapsed() >= Duration::from_millis(50)) {
            kill_pids(&pids)?;
            last_kill = Some(Instant::now());
        }
        sleep(Duration::from_millis(10));
    }
}

/// Ids (valid names only) of the subdirectories of `parent`; missing parent = none.
fn list_ids(parent: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("readdir", parent, e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("readdir", parent, e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if let Some(name) = entry.file_name().to_str() {
            if is_dir && validate_id(name).is_ok() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn ids_are_validated() {
        for good in ["a", "abc123", &"z".repeat(64)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "A",
            "a-b",
            "a.b",
            " a",
            &"z".repeat(65),
            "é",
        ] {
            assert!(
                matches!(validate_id(bad), Err(CgroupError::InvalidId(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn mountinfo_parsing() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 7);
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m[6].fstype, "cgroup2");
        let comount = "1 2 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                       3 4 0:2 / /mnt/with\\040space rw shared:5 - cgroup cgroup rw,pids";
        let m = parse_mountinfo(comount);
        assert_eq!(m[0].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[1].mount_point, PathBuf::from("/mnt/with space"));
    }

    #[test]
    fn detect_hybrid_is_v1() {
        let tmp = tempfile::tempdir().unwrap();
        let mgr = detect_from(tmp.path(), HYBRID).unwrap();
        assert_eq!(mgr.version(), CgroupVersion::V1);
        assert_eq!(
            mgr.path("abc"),
            PathBuf::from("/sys/fs/cgroup/memory/isolab/abc")
        );
        // No cgroup mounts at all: nothing usable.
        assert!(matches!(
            detect_from(tmp.path(), ""),
            Err(CgroupError::NoHierarchy(_))
        ));
    }
}
