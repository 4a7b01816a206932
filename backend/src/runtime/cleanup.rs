//! Remove what a container leaves: its processes, the overlay mount, its cgroup, its name and
//! its folders. [`teardown`] is idempotent and safe to run twice at once (the monitor and an
//! `isolab rm` may race); [`gc`] applies it to every container nobody is in charge of, and
//! removes the named volumes of server sessions that are gone (never the CLI's `local` ones).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::mount::{umount2, MntFlags};

use super::cgroups::CgroupManager;
use super::state::{self, ContainerState};
use super::{is_id, Paths};

/// A folder younger than this without a state file may be a create in progress.
const YOUNG: Duration = Duration::from_secs(30);

/// Tear one container down. Returns what could not be removed (empty when all went well).
pub fn teardown(paths: &Paths, id: &str, cgroups: &dyn CgroupManager) -> Vec<String> {
    teardown_with(paths, id, cgroups, None)
}

/// [`teardown`], for a caller that knows where the overlay is mounted (the container's own
/// monitor): it is unmounted directly instead of being looked for in the mount table.
pub fn teardown_with(
    paths: &Paths,
    id: &str,
    cgroups: &dyn CgroupManager,
    rootfs: Option<&Path>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_id(id) {
        return vec![format!("refusing to tear down {id:?}: not an id")];
    }
    if let Err(e) = cgroups.kill_all(id) {
        problems.push(format!("kill processes: {e}"));
    }
    // A peer runtime's container (runc, crun): its own state and cgroups.
    problems.extend(super::peer::delete(paths, id));
    // Otherwise the overlay is found by its upper dir, wherever it was mounted (a crashed run
    // may have used another state root).
    // A peer's idmapped root, attached on the host at the bundle's `rootfs`, names its upper
    // folder by descriptor: it is found by its mount point.
    let points = match rootfs {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let mut points = overlay_mounts(&paths.layer(id).join("upper"));
            points.push(paths.rootfs(id));
            points
        }
    };
    for point in points {
        match umount2(point.as_path(), MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => problems.push(format!("unmount {}: {e}", point.display())),
        }
    }
    // The writable layer's size cap (a tmpfs over its folder), if it has one.
    match umount2(paths.layer(id).as_path(), MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => problems.push(format!("unmount {}: {e}", paths.layer(id).display())),
    }
    // Its network: DEL releases the address and the port mappings (the namespace, and the veth
    // end in it, went with the processes). The record goes with the folder below.
    if let Some(att) = super::cni::Attachment::load(&paths.container(id)) {
        if let Err(e) = att.del() {
            problems.push(format!("CNI DEL: {e}"));
        }
    }
    if let Err(e) = cgroups.remove(id) {
        problems.push(format!("remove cgroup: {e}"));
    }
    // The last container out removes the `isolab` parent too (a create racing with this makes
    // it again; a parent that still has a child is never removed).
    let _ = cgroups.remove_parent_if_empty();
    state::release_names(paths, id);
    super::uid_ranges::release(paths, id);
    for dir in [paths.container(id), paths.layer(id)] {
        if let Err(e) = remove_tree(&dir) {
            problems.push(format!("remove {}: {e}", dir.display()));
        }
    }
    problems
}

/// Mount points of the overlays whose upper dir is `upper`, from `/proc/self/mountinfo`.
fn overlay_mounts(upper: &Path) -> Vec<PathBuf> {
    let needle = format!("upperdir={}", upper.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.split(',').any(|o| o == needle))
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
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
    /// Volume folders of server sessions that are gone (a crashed server's).
    pub volume_sets: Vec<PathBuf>,
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
    // Overlays still mounted over one of our writable layers.
    let layers = format!("upperdir={}/", paths.layers().display());
    for line in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if let Some(rest) = line
            .split(',')
            .find_map(|o| o.strip_prefix(layers.as_str()))
        {
            candidates.extend(rest.split('/').next().map(str::to_string));
        }
        // A size cap's tmpfs mounted on a writable layer's folder.
        if let Some(rest) = line
            .split_whitespace()
            .nth(4)
            .and_then(|point| point.strip_prefix(&layers["upperdir=".len()..]))
        {
            candidates.extend(rest.split('/').next().map(str::to_string));
        }
    }
    let mut report = GcReport::default();
    for id in candidates.into_iter().filter(|id| is_id(id)) {
        if in_charge(paths, &id, cgroups) {
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
    super::uid_ranges::release_stale(paths);
    let _ = cgroups.remove_parent_if_empty();
    // After the containers: a dead session's volumes are no longer mounted anywhere.
    report.volume_sets = super::volumes::collect_sets(&paths.volumes());
    for dir in &report.volume_sets {
        tracing::info!(
            "removed the volumes of a session that is gone: {}",
            dir.display()
        );
    }
    report
}

/// Is someone (possibly a run with another state root) still in charge of `id`?
fn in_charge(paths: &Paths, id: &str, cgroups: &dyn CgroupManager) -> bool {
    if let Ok(s) = ContainerState::load(paths, id) {
        // A stopped OCI container has no process left, only its state, which `oci delete`
        // removes (as runc's).
        return s.is_owned() || s.status == state::Status::Stopped;
    }
    // Known only from a host-wide scan (its cgroup, its layer, its overlay): it may belong to
    // another state root, or be a create still writing its state. Leave it while any process
    // is in its cgroup (a container whose monitor died has none: they die with it) or while
    // its folders are young.
    let busy = cgroups.pids(id).is_ok_and(|p| !p.is_empty());
    let young = [paths.container(id), paths.layer(id), cgroups.path(id)]
        .iter()
        .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
        .any(|t| SystemTime::now().duration_since(t).unwrap_or_default() < YOUNG);
    busy || young
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mountinfo("/run/a\\040b"), "/run/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
