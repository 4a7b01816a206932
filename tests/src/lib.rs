//! Test harness shared by the suites in `tests/suites/`: runs the real `isolab` binary as root,
//! and a leak checker that looks from the host for anything a container left behind (mounts,
//! cgroups, helper processes, state and layer folders).

pub mod server;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Privileged tests share the host's cgroups and mounts: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// One test's view of isolab: the binary, its own state root, the shared data root (so the
/// busybox image is built once), and a snapshot of the host taken before the test.
pub struct Isolab {
    pub bin: PathBuf,
    pub state_root: PathBuf,
    pub data_root: PathBuf,
    _state_dir: tempfile::TempDir,
    /// A data root of the test's own (its image store), when asked for.
    _data_dir: Option<tempfile::TempDir>,
    before: Snapshot,
    _guard: MutexGuard<'static, ()>,
}

impl Isolab {
    /// `bin` is the `isolab` binary (`env!("CARGO_BIN_EXE_isolab")` in a suite).
    pub fn new(bin: &str) -> Isolab {
        Isolab::make(bin, false)
    }

    /// With an image store of its own (a fresh data root, busybox made in it): for tests that
    /// import, build and remove images.
    pub fn with_own_store(bin: &str) -> Isolab {
        Isolab::make(bin, true)
    }

    fn make(bin: &str, own_store: bool) -> Isolab {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            nix_is_root(),
            "these tests make namespaces, mounts and cgroups: run them as root"
        );
        let state_dir = tempfile::Builder::new()
            .prefix("isolab-test-")
            .tempdir_in("/run")
            .expect("temp state root");
        let data_dir = own_store.then(|| {
            tempfile::Builder::new()
                .prefix("isolab-test-store-")
                .tempdir_in("/var/tmp")
                .expect("temp data root")
        });
        let data_root = match &data_dir {
            Some(d) => d.path().to_path_buf(),
            None => std::env::var_os("ISOLAB_TEST_DATA_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/lib/isolab")),
        };
        let mut isolab = Isolab {
            bin: PathBuf::from(bin),
            state_root: state_dir.path().to_path_buf(),
            data_root,
            _state_dir: state_dir,
            _data_dir: data_dir,
            before: Snapshot::take(Path::new("/nonexistent"), Path::new("/nonexistent")),
            _guard: guard,
        };
        // The image is made once, outside any test's leak accounting.
        let out = isolab.run(&["image", "init"]);
        assert!(out.status.success(), "image init: {}", stderr(&out));
        isolab.before = Snapshot::take(&isolab.state_root, &isolab.data_root);
        isolab
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("ISOLAB_STATE_ROOT", &self.state_root)
            .env("ISOLAB_DATA_ROOT", &self.data_root)
            .stdin(Stdio::null());
        c
    }

    /// Run `isolab ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run isolab")
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "isolab {args:?} failed ({:?}): {}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `isolab inspect NAME` as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect JSON")
    }

    /// The host pid of a container's first process.
    pub fn pid_of(&self, name: &str) -> i32 {
        self.inspect(name)["init"]["pid"]
            .as_i64()
            .expect("init pid") as i32
    }

    pub fn id_of(&self, name: &str) -> String {
        self.inspect(name)["id"].as_str().expect("id").to_string()
    }

    /// Assert that nothing the test made is left on the host (waiting briefly, since a detached
    /// container's monitor cleans up asynchronously).
    pub fn assert_no_leaks(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = Snapshot::take(&self.state_root, &self.data_root);
            let leaks = now.minus(&self.before);
            if leaks.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("left behind: {leaks:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Isolab {
    fn drop(&mut self) {
        // Whatever a failed test left running: remove it so the next test starts clean.
        let _ = self.cmd(&["gc"]).output();
        if let Ok(out) = self.cmd(&["ps"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
                if let Some(id) = line.split_whitespace().next() {
                    let _ = self.cmd(&["rm", id]).output();
                }
            }
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// What a container can leave on the host, as strings, to compare before and after.
#[derive(Debug, Default)]
struct Snapshot(BTreeSet<String>);

impl Snapshot {
    fn take(state_root: &Path, data_root: &Path) -> Snapshot {
        let mut s = BTreeSet::new();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in info.lines().filter(|l| l.contains("isolab")) {
                // Mount ids are unique; the mount point tells what it is.
                let point = line.split_whitespace().nth(4).unwrap_or(line);
                s.insert(format!("mount {point}"));
            }
        }
        for root in cgroup_parents() {
            if root.is_dir() {
                s.insert(format!("cgroup parent {}", root.display()));
            }
            for e in read_dir(&root).into_iter().filter(|e| e.is_dir()) {
                s.insert(format!("cgroup {}", e.display()));
            }
        }
        for e in read_dir(Path::new("/proc")) {
            let exe = std::fs::read_link(e.join("exe")).unwrap_or_default();
            if exe.to_string_lossy().contains("isolab-init") {
                s.insert(format!("process {} {}", e.display(), exe.display()));
            }
        }
        // Networks: isolab's bridges, veths on them, iptables rules and IPAM leases.
        if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let name = line.split(": ").nth(1).unwrap_or("");
                if name.starts_with("isl-") || line.contains("master isl-") {
                    s.insert(format!("link {}", name.split('@').next().unwrap_or(name)));
                }
            }
        }
        if let Ok(out) = Command::new("iptables-save").output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.contains("isolab-") && !line.starts_with('#') {
                    s.insert(format!("iptables {line}"));
                }
            }
        }
        for e in read_dir(&data_root.join("cni/ipam")) {
            s.insert(format!("ipam {}", e.display()));
        }
        // Named volumes: the CLI's (kept until `volume rm`), and each server session's set
        // (removed when the session ends).
        let volumes = state_root.join("volumes");
        for e in read_dir(&volumes)
            .into_iter()
            .chain(read_dir(&volumes.join("local")))
        {
            if e != volumes.join("local") {
                s.insert(format!("volume {}", e.display()));
            }
        }
        for dir in [
            state_root.join("containers"),
            state_root.join("names"),
            data_root.join("containers"),
            data_root.join("images"),
            data_root.join("layers"),
            data_root.join("blobs/sha256"),
            data_root.join("tmp"),
        ] {
            for e in read_dir(&dir) {
                s.insert(format!("file {}", e.display()));
            }
        }
        Snapshot(s)
    }

    fn minus(&self, before: &Snapshot) -> Vec<String> {
        self.0.difference(&before.0).cloned().collect()
    }
}

/// The `isolab` parent cgroup in every hierarchy that has one.
fn cgroup_parents() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/sys/fs/cgroup/isolab")];
    for e in read_dir(Path::new("/sys/fs/cgroup")) {
        out.push(e.join("isolab"));
    }
    out
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_type()
                        .is_ok_and(|t| t.is_dir() || t.is_symlink() || t.is_file())
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The nf_tables tables named isolab (the server's firewall, `inet isolab`, held while a
/// server runs), as `nft list tables` prints them; empty where nft is not installed.
pub fn firewall_tables() -> Vec<String> {
    Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("isolab"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A container's limits as its cgroup files hold them, written the cgroup v2 way whichever
/// version the host has: memory (`memory.max`), CPU (`cpu.max`: quota and period in
/// microseconds) and pids (`pids.max`).
#[derive(Debug, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory: String,
    pub cpu: String,
    pub pids: String,
}

pub fn cgroup_limits(id: &str) -> CgroupLimits {
    let file = |controller: &str, name: &str| {
        std::fs::read_to_string(cgroup_dir(controller, id).join(name))
            .unwrap_or_else(|e| panic!("{controller}/{name} of {id}: {e}"))
            .trim()
            .to_string()
    };
    let v1 = cgroup_dir("memory", id).starts_with("/sys/fs/cgroup/memory");
    if v1 {
        let quota = file("cpu", "cpu.cfs_quota_us");
        CgroupLimits {
            memory: file("memory", "memory.limit_in_bytes"),
            cpu: format!(
                "{} {}",
                if quota == "-1" { "max" } else { &quota },
                file("cpu", "cpu.cfs_period_us")
            ),
            pids: file("pids", "pids.max"),
        }
    } else {
        CgroupLimits {
            memory: file("memory", "memory.max"),
            cpu: file("cpu", "cpu.max"),
            pids: file("pids", "pids.max"),
        }
    }
}

/// The cgroup v1 (or v2) folder of a container in one controller, e.g. `memory`.
pub fn cgroup_dir(controller: &str, id: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("isolab")
        .join(id);
    if v1.exists() {
        return v1;
    }
    Path::new("/sys/fs/cgroup/isolab").join(id)
}

/// Wait until `f` holds, or panic with `what`.
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
