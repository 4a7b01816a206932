//! Real-host tests (root only, `cargo test -- --ignored`): they create, fill, kill and remove
//! real cgroups under `isolab`, and clean up even when an assertion fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;

/// Kills, removes and reaps everything on drop (also on panic).
struct Cleanup<'a> {
    mgr: &'a dyn CgroupManager,
    id: String,
    children: Vec<Child>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.mgr.kill_all(&self.id);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.mgr.remove(&self.id);
        let _ = self.mgr.remove_parent_if_empty();
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A shell that joins the cgroup itself (like the init helper: "0" into every procs file),
/// then keeps a background sleep and waits on it.
fn self_joining_shell(procs: &[PathBuf]) -> Child {
    let script = "for f; do echo 0 > \"$f\" || exit 1; done; sleep 1000 & wait";
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(procs)
        .spawn()
        .unwrap()
}

/// Reap the orphaned background sleeps (reparented to us as subreaper); only the given pids,
/// so a concurrently running test's children are not stolen.
fn reap_orphans(pids: &[i32], ours: &[i32]) {
    for &p in pids.iter().filter(|p| !ours.contains(p)) {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(p), None);
    }
}

#[test]
#[ignore = "needs root on a cgroup v1 / hybrid host; creates real cgroups"]
fn real_host_v1() {
    let mgr = detect().unwrap();
    assert_eq!(
        mgr.version(),
        CgroupVersion::V1,
        "this test is for v1/hybrid hosts"
    );
    // Orphaned grandchildren get reparented to us, so we can reap them.
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let id = format!("isolabtest{}", std::process::id());
    let mut guard = Cleanup {
        mgr: mgr.as_ref(),
        id: id.clone(),
        children: Vec::new(),
    };
    let res = Resources {
        memory_bytes: Some(32 << 20),
        cpu_quota_us: Some(20_000),
        cpu_period_us: Some(100_000),
        pids_max: Some(16),
        devices: Vec::new(),
    };
    mgr.create(&id, &res).unwrap();
    assert!(matches!(
        mgr.create(&id, &res),
        Err(CgroupError::AlreadyExists(_))
    ));
    let mem = Path::new("/sys/fs/cgroup/memory/isolab").join(&id);
    assert_eq!(mgr.path(&id), mem);
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "33554432");
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "33554432");
    }
    let cpu = fs::canonicalize("/sys/fs/cgroup/cpu")
        .unwrap()
        .join("isolab")
        .join(&id);
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(
        read(
            PathBuf::from("/sys/fs/cgroup/pids/isolab")
                .join(&id)
                .join("pids.max")
        ),
        "16"
    );
    assert!(mgr.list().unwrap().contains(&id));
    let dirs = mgr.container_dirs(&id);
    assert!(
        dirs.iter().any(|(n, d)| n == "memory" && *d == mem),
        "{dirs:?}"
    );

    // One child joined by us, one that joins itself through procs_files.
    let a = Command::new("sleep").arg("1000").spawn().unwrap();
    let a_pid = a.id() as i32;
    guard.children.push(a);
    mgr.add_process(&id, a_pid).unwrap();
    let b = self_joining_shell(&mgr.procs_files(&id));
    let b_pid = b.id() as i32;
    guard.children.push(b);
    wait_for("3 processes in the cgroup", || {
        mgr.pids(&id).map(|p| p.len() == 3).unwrap_or(false)
    });
    let pids = mgr.pids(&id).unwrap();
    assert!(pids.contains(&a_pid) && pids.contains(&b_pid), "{pids:?}");
    for f in mgr.procs_files(&id) {
        assert!(
            read(f.clone()).lines().count() == 3,
            "{} lacks a pid",
            f.display()
        );
    }
    let s = mgr.stats(&id).unwrap();
    assert_eq!(s.pids_current, 3);
    assert_eq!(s.pids_limit, Some(16));
    assert_eq!(s.memory_limit, Some(32 << 20));
    assert!(s.memory_current > 0);

    mgr.kill_all(&id).unwrap();
    assert!(mgr.pids(&id).unwrap().is_empty());
    for c in &mut guard.children {
        let status = c.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
    guard.children.clear();
    reap_orphans(&pids, &[a_pid, b_pid]);

    mgr.remove(&id).unwrap();
    mgr.remove(&id).unwrap();
    for (_, d) in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(!mgr.list().unwrap().contains(&id));
    mgr.remove_parent_if_empty().unwrap();
}

#[test]
#[ignore = "needs root on a hybrid host; uses the controller-less cgroup2 at /sys/fs/cgroup/unified"]
fn real_host_v2_unified_without_controllers() {
    let root = Path::new("/sys/fs/cgroup/unified");
    assert!(is_cgroup2(root).unwrap());
    let mgr = new_v2(root);
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let id = format!("isolabtestv2{}", std::process::id());
    let mut guard = Cleanup {
        mgr: mgr.as_ref(),
        id: id.clone(),
        children: Vec::new(),
    };
    // No memory controller there: a clear error and nothing left behind.
    let res = Resources {
        memory_bytes: Some(1 << 20),
        ..Default::default()
    };
    assert!(matches!(
        mgr.create(&id, &res),
        Err(CgroupError::ControllerMissing(_))
    ));
    assert!(!mgr.path(&id).exists());

    mgr.create(&id, &Resources::default()).unwrap();
    let child = self_joining_shell(&mgr.procs_files(&id));
    let child_pid = child.id() as i32;
    guard.children.push(child);
    wait_for("2 processes", || {
        mgr.pids(&id).map(|p| p.len() == 2).unwrap_or(false)
    });
    let pids = mgr.pids(&id).unwrap();
    mgr.kill_all(&id).unwrap(); // cgroup.kill path
    assert!(mgr.pids(&id).unwrap().is_empty());
    let status = guard.children[0].wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    guard.children.clear();
    reap_orphans(&pids, &[child_pid]);
    mgr.remove(&id).unwrap();
    assert!(!mgr.path(&id).exists());
}
