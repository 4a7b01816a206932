//! Remove what a container leaves: its processes, the overlay mount, its cgroup, its name and
//! its folders. [`teardown`] is idempotent and safe to run twice at once (the monitor and an
//! `isolab rm` may race); [`gc`] applies it to every container nobody is in charge of.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::mount::{umount2, MntFlags};

use super::cgroups::CgroupManager;
use super::state::{self, ContainerState};
use super::{is_id, Paths};

/// A folder younger than this without a state file may be a create in progress.
const YOUNG: Duration = Duration::from_secs(30);

/// Tear one container down. Returns what could not be removed (empty when all went well).
pub fn teardown(paths: &Paths, id: &str, cgroups: &dyn CgroupManager) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_id(id) {
        return vec![format!("refusing to tear down {id:?}: not an id")];
    }
    if let Err(e) = cgroups.kill_all(id) {
        problems.push(format!("kill processes: {e}"));
    }
    let rootfs = paths.rootfs(id);
    match umount2(&rootfs, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => problems.push(format!("unmount {}: {e}", rootfs.display())),
    }
    if let Err(e) = cgroups.remove(id) {
        problems.push(format!("remove cgroup: {e}"));
    }
    state::release_names(paths, id);
    for dir in [paths.container(id), paths.layer(id)] {
        if let Err(e) = remove_tree(&dir) {
            problems.push(format!("remove {}: {e}", dir.display()));
        }
    }
    problems
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// What [`gc`] did.
#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: Vec<String>,
    pub problems: Vec<String>,
}

/// Find every container that nobody is in charge of (its monitor is dead, or it never got one
/// and its launcher is dead) and tear it down. Containers being created or run are left alone.
pub fn gc(paths: &Paths, cgroups: &dyn CgroupManager) -> GcReport {
    let mut candidates = BTreeSet::new();
    for dir in [paths.containers(), paths.layers()] {
        if let Ok(entries) = fs::read_dir(&dir) {
            candidates.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok()),
            );
        }
    }
    candidates.extend(cgroups.list().unwrap_or_default());
    let mut report = GcReport::default();
    for id in candidates.into_iter().filter(|id| is_id(id)) {
        if in_charge(paths, &id) {
            continue;
        }
        let problems = teardown(paths, &id, cgroups);
        report
            .problems
            .extend(problems.into_iter().map(|p| format!("{id}: {p}")));
        report.removed.push(id);
    }
    // Names whose container is gone.
    if let Ok(entries) = fs::read_dir(paths.names()) {
        for e in entries.flatten() {
            let target = fs::read_link(e.path()).ok();
            let live = target
                .and_then(|t| t.to_str().map(str::to_string))
                .is_some_and(|id| paths.container(&id).exists());
            if !live {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let _ = cgroups.remove_parent_if_empty();
    report
}

fn in_charge(paths: &Paths, id: &str) -> bool {
    match ContainerState::load(paths, id) {
        Ok(s) => s.is_owned(),
        // No state yet: a create may be writing it.
        Err(_) => fs::metadata(paths.container(id))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < YOUNG),
    }
}
