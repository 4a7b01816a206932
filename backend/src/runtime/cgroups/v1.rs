//! Legacy (v1) backend, hybrid hosts included: a container is `<mount>/isolab/<id>` in each
//! hierarchy holding memory, cpu, cpuacct, pids and (when mounted) freezer and devices. Comounted
//! controllers (`cpu,cpuacct`) share one hierarchy and are handled once.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{
    ensure_dir, kill_and_wait, kill_pids, limit_value, list_ids, mkdir_new, read_procs,
    rmdir_if_unused, rmdir_retry, validate_id, write_file, CgroupError, CgroupManager,
    CgroupVersion, Resources, Sources, Stats, PARENT, V1_CONTROLLERS,
};

/// cgroup v1 manager over a set of controller hierarchies.
#[derive(Debug, Clone)]
pub struct V1Manager {
    /// controller -> hierarchy mount dir (canonical, so comounts compare equal).
    controllers: BTreeMap<String, PathBuf>,
}

impl V1Manager {
    /// Keep the controllers we use; symlinked mounts (`cpu -> cpu,cpuacct`) are resolved.
    pub fn new(controllers: BTreeMap<String, PathBuf>) -> Self {
        let controllers = controllers
            .into_iter()
            .filter(|(c, _)| V1_CONTROLLERS.contains(&c.as_str()))
            .map(|(c, p)| (c, std::fs::canonicalize(&p).unwrap_or(p)))
            .collect();
        V1Manager { controllers }
    }

    /// The container's dir in the hierarchy of `controller`, if that controller is in use.
    pub fn controller_path(&self, controller: &str, id: &str) -> Option<PathBuf> {
        validate_id(id).ok()?;
        Some(self.controllers.get(controller)?.join(PARENT).join(id))
    }

    /// Distinct hierarchy mounts, in [`V1_CONTROLLERS`] order.
    fn hierarchies(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for c in V1_CONTROLLERS {
            if let Some(p) = self.controllers.get(c) {
                if !out.contains(&p.as_path()) {
                    out.push(p);
                }
            }
        }
        out
    }

    fn dirs(&self, id: &str) -> Result<Vec<PathBuf>, CgroupError> {
        validate_id(id)?;
        Ok(self
            .hierarchies()
            .into_iter()
            .map(|h| h.join(PARENT).join(id))
            .collect())
    }

    /// The container's dir for `controller` if it exists.
    fn existing(&self, controller: &str, id: &str) -> Option<PathBuf> {
        self.controller_path(controller, id).filter(|d| d.is_dir())
    }

    fn need(&self, controller: &str) -> Result<&Path, CgroupError> {
        self.controllers
            .get(controller)
            .map(PathBuf::as_path)
            .ok_or_else(|| CgroupError::ControllerMissing(controller.to_string()))
    }

    fn apply(&self, id: &str, res: &Resources) -> Result<(), CgroupError> {
        if let Some(bytes) = res.memory_bytes {
            let mount = self.need("memory")?;
            let dir = mount.join(PARENT).join(id);
            write_file(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
            // memsw (memory+swap) exists only with swap accounting; it must be >= the limit,
            // hence written second. Equal values mean no swap.
            let memsw = "memory.memsw.limit_in_bytes";
            if dir.join(memsw).exists() || mount.join(memsw).exists() {
                write_file(&dir.join(memsw), &bytes.to_string())?;
            }
        }
        if res.cpu_quota_us.is_some() || res.cpu_period_us.is_some() {
            let dir = self.need("cpu")?.join(PARENT).join(id);
            if let Some(period) = res.cpu_period_us {
                write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = res.cpu_quota_us {
                write_file(&dir.join("cpu.cfs_quota_us"), &quota.max(-1).to_string())?;
            }
        }
        if let Some(max) = res.pids_max {
            let dir = self.need("pids")?.join(PARENT).join(id);
            write_file(&dir.join("pids.max"), &limit_value(max))?;
        }
        if !res.devices.is_empty() {
            // In order: the list starts with "deny all", which empties the allow list.
            let dir = self.need("devices")?.join(PARENT).join(id);
            for rule in &res.devices {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write_file(&dir.join(file), &rule.v1_line())?;
            }
        }
        Ok(())
    }

    /// Union of the pids in every hierarchy dir that exists.
    fn all_pids(dirs: &[PathBuf]) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for d in dirs {
            match read_procs(&d.join("cgroup.procs")) {
                Ok(p) => pids.extend(p),
                Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                }
                Err(e) => return Err(e),
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Freeze the container (so nothing forks while we kill); returns the state file to thaw.
    fn freeze(&self, id: &str) -> Result<Option<PathBuf>, CgroupError> {
        let Some(state) = self
            .existing("freezer", id)
            .map(|d| d.join("freezer.state"))
            .filter(|s| s.exists())
        else {
            return Ok(None);
        };
        write_file(&state, "FROZEN")?;
        // FREEZING may linger (e.g. tasks in uninterruptible sleep); go on after a while.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let now = std::fs::read_to_string(&state).unwrap_or_default();
            if now.trim() == "FROZEN" {
                break;
            }
            sleep(Duration::from_millis(5));
        }
        Ok(Some(state))
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn update(&self, id: &str, res: &Resources) -> Result<(), CgroupError> {
        let res = Resources {
            devices: Vec::new(),
            ..res.clone()
        };
        // memory.limit_in_bytes may never exceed memsw: lift memsw first, then write both.
        if res.memory_bytes.is_some() {
            let memsw = self
                .need("memory")?
                .join(PARENT)
                .join(id)
                .join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, "-1")?;
            }
        }
        self.apply(id, &res)
    }

    fn create(&self, id: &str, res: &Resources) -> Result<(), CgroupError> {
        let dirs = self.dirs(id)?;
        if dirs.is_empty() {
            return Err(CgroupError::ControllerMissing("memory".to_string()));
        }
        let mut made: Vec<&PathBuf> = Vec::new();
        let mut result = Ok(());
        for dir in &dirs {
            let parent = dir.parent().unwrap_or(dir);
            result = ensure_dir(parent).and_then(|()| match mkdir_new(dir) {
                // The parent vanished under us (a concurrent gc): make it again, once.
                Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    ensure_dir(parent).and_then(|()| mkdir_new(dir))
                }
                other => other,
            });
            if result.is_err() {
                break;
            }
            made.push(dir);
        }
        let result = result.and_then(|()| self.apply(id, res));
        if result.is_err() {
            for dir in made {
                let _ = rmdir_retry(dir);
            }
        }
        result
    }

    fn procs_files(&self, id: &str) -> Vec<PathBuf> {
        self.dirs(id)
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn add_process(&self, id: &str, pid: i32) -> Result<(), CgroupError> {
        for dir in self.dirs(id)? {
            if !dir.is_dir() {
                return Err(CgroupError::NotFound(dir));
            }
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>, CgroupError> {
        let dirs = self.dirs(id)?;
        if !dirs.iter().any(|d| d.is_dir()) {
            return Err(CgroupError::NotFound(self.path(id)));
        }
        Self::all_pids(&dirs)
    }

    fn stats(&self, id: &str) -> Result<Stats, CgroupError> {
        self.stats_sources(id)?.read()
    }

    fn stats_sources(&self, id: &str) -> Result<Sources, CgroupError> {
        let dirs = self.dirs(id)?;
        if !dirs.iter().any(|d| d.is_dir()) {
            return Err(CgroupError::NotFound(self.path(id)));
        }
        Ok(Sources::V1 {
            memory: self.existing("memory", id),
            cpu: self.existing("cpu", id),
            cpuacct: self.existing("cpuacct", id),
            pids: self.existing("pids", id),
        })
    }

    fn kill_all(&self, id: &str) -> Result<(), CgroupError> {
        let dirs: Vec<PathBuf> = self.dirs(id)?.into_iter().filter(|d| d.is_dir()).collect();
        // Already empty (the usual case once PID 1 has exited): no freeze needed.
        if dirs.is_empty() || Self::all_pids(&dirs)?.is_empty() {
            return Ok(());
        }
        let frozen = self.freeze(id)?;
        // SIGKILL is queued for frozen tasks and takes effect as soon as they thaw.
        let killed = Self::all_pids(&dirs).and_then(|p| kill_pids(&p));
        if let Some(state) = frozen {
            write_file(&state, "THAWED")?;
        }
        killed?;
        kill_and_wait(&dirs[0], || Self::all_pids(&dirs))
    }

    fn remove(&self, id: &str) -> Result<(), CgroupError> {
        let mut result = Ok(());
        for dir in self.dirs(id)? {
            if let Err(e) = rmdir_retry(&dir) {
                tracing::warn!("cgroup v1: {e}");
                result = result.and(Err(e));
            }
        }
        result
    }

    fn remove_parent_if_empty(&self) -> Result<(), CgroupError> {
        if self.list()?.is_empty() {
            for h in self.hierarchies() {
                rmdir_if_unused(&h.join(PARENT))?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut ids = Vec::new();
        for h in self.hierarchies() {
            ids.extend(list_ids(&h.join(PARENT))?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn container_dirs(&self, id: &str) -> Vec<(String, PathBuf)> {
        if validate_id(id).is_err() {
            return Vec::new();
        }
        self.hierarchies()
            .into_iter()
            .filter_map(|h| {
                let name = h.file_name()?.to_str()?.to_string();
                Some((name, h.join(PARENT).join(id)))
            })
            .collect()
    }

    fn path(&self, id: &str) -> PathBuf {
        let h = self.controllers.get("memory").map(PathBuf::as_path);
        let h = h.or_else(|| self.hierarchies().first().copied());
        match (h, validate_id(id)) {
            (Some(h), Ok(())) => h.join(PARENT).join(id),
            // A name mkdir never makes: observers simply see nothing.
            (Some(h), Err(_)) => h.join(PARENT).join(".invalid-id"),
            (None, _) => PathBuf::from("/nonexistent-cgroup"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake hybrid-style tree: one dir per controller, as on this project's VM.
    fn fake_tree(names: &[&str]) -> (tempfile::TempDir, BTreeMap<String, PathBuf>) {
        let tmp = tempfile::tempdir().unwrap();
        let mut map = BTreeMap::new();
        for n in names {
            let d = tmp.path().join(n);
            fs::create_dir(&d).unwrap();
            for c in n.split(',') {
                map.insert(c.to_string(), d.clone());
            }
        }
        (tmp, map)
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(p).unwrap()
    }

    /// Fake dirs keep our files, so rmdir would fail: empty them like the kernel would.
    fn clear(dir: &Path) {
        for f in fs::read_dir(dir).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
    }

    #[test]
    fn separate_mounts_create_and_lifecycle() {
        let (tmp, map) = fake_tree(&["memory", "cpu", "cpuacct", "pids", "freezer", "cpuset"]);
        let r = tmp.path();
        fs::write(
            r.join("memory/memory.memsw.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        let m = V1Manager::new(map);
        let res = Resources {
            memory_bytes: Some(32 << 20),
            cpu_quota_us: Some(25_000),
            cpu_period_us: Some(50_000),
            pids_max: Some(16),
            devices: Vec::new(),
        };
        m.create("c1", &res).unwrap();
        let dir = |c: &str| r.join(c).join("isolab/c1");
        assert_eq!(
            read(dir("memory").join("memory.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(
            read(dir("memory").join("memory.memsw.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(read(dir("cpu").join("cpu.cfs_period_us")), "50000");
        assert_eq!(read(dir("cpu").join("cpu.cfs_quota_us")), "25000");
        assert_eq!(read(dir("pids").join("pids.max")), "16");
        assert!(dir("cpuacct").is_dir() && dir("freezer").is_dir());
        assert!(!dir("cpuset").exists(), "unused controllers are left alone");
        assert_eq!(m.path("c1"), dir("memory"));
        assert_eq!(m.controller_path("cpuacct", "c1"), Some(dir("cpuacct")));
        let procs: Vec<PathBuf> = ["memory", "cpu", "cpuacct", "pids", "freezer"]
            .iter()
            .map(|c| dir(c).join("cgroup.procs"))
            .collect();
        assert_eq!(m.procs_files("c1"), procs);
        let names: Vec<String> = m.container_dirs("c1").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["memory", "cpu", "cpuacct", "pids", "freezer"]);
        assert!(matches!(
            m.create("c1", &res),
            Err(CgroupError::AlreadyExists(_))
        ));
        assert_eq!(m.list().unwrap(), vec!["c1"]);

        m.add_process("c1", 777).unwrap();
        for p in &procs {
            assert_eq!(read(p.clone()), "777");
        }
        fs::write(&procs[1], "777\n778\n").unwrap();
        assert_eq!(m.pids("c1").unwrap(), vec![777, 778]);
        fs::write(dir("memory").join("memory.usage_in_bytes"), "4096\n").unwrap();
        fs::write(dir("cpuacct").join("cpuacct.usage"), "2000000\n").unwrap();
        let s = m.stats("c1").unwrap();
        assert_eq!((s.memory_current, s.memory_limit), (4096, Some(32 << 20)));
        assert_eq!((s.cpu_usage_usec, s.pids_limit), (2000, Some(16)));

        // Empty cgroup: nothing to freeze, kill returns at once.
        for p in &procs {
            fs::write(p, "").unwrap();
        }
        fs::write(dir("freezer").join("freezer.state"), "THAWED").unwrap();
        m.kill_all("c1").unwrap();
        assert_eq!(read(dir("freezer").join("freezer.state")), "THAWED");

        for c in ["memory", "cpu", "cpuacct", "pids", "freezer"] {
            clear(&dir(c));
        }
        m.remove("c1").unwrap();
        m.remove("c1").unwrap();
        assert!(m.list().unwrap().is_empty());
        m.remove_parent_if_empty().unwrap();
        for c in ["memory", "cpu", "cpuacct", "pids", "freezer"] {
            assert!(!r.join(c).join("isolab").exists());
        }
        // Missing cgroup.
        m.kill_all("c1").unwrap();
        assert!(matches!(m.pids("c1"), Err(CgroupError::NotFound(_))));
        assert!(matches!(m.stats("c1"), Err(CgroupError::NotFound(_))));
        assert!(matches!(
            m.add_process("c1", 1),
            Err(CgroupError::NotFound(_))
        ));
    }

    #[test]
    fn comounted_cpu_cpuacct_via_symlinks() {
        let (tmp, mut map) = fake_tree(&["memory", "cpu,cpuacct", "pids"]);
        let r = tmp.path();
        std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpuacct")).unwrap();
        map.insert("cpu".into(), r.join("cpu"));
        map.insert("cpuacct".into(), r.join("cpuacct"));
        let m = V1Manager::new(map);
        let res = Resources {
            memory_bytes: Some(1 << 20),
            cpu_quota_us: Some(-5),
            ..Default::default()
        };
        m.create("x9", &res).unwrap();
        let canon = fs::canonicalize(r).unwrap();
        let d = canon.join("cpu,cpuacct/isolab/x9");
        assert_eq!(read(d.join("cpu.cfs_quota_us")), "-1");
        assert!(!d.join("cpu.cfs_period_us").exists());
        assert!(!canon
            .join("memory/isolab/x9/memory.memsw.limit_in_bytes")
            .exists());
        assert_eq!(m.procs_files("x9").len(), 3);
        let dirs = m.container_dirs("x9");
        assert_eq!(dirs[1], ("cpu,cpuacct".to_string(), d));
        // No freezer mounted: killing an empty cgroup still works.
        for p in m.procs_files("x9") {
            fs::write(p, "").unwrap();
        }
        m.kill_all("x9").unwrap();
    }

    #[test]
    fn failures_leave_nothing_behind() {
        let (tmp, map) = fake_tree(&["memory", "cpu", "cpuacct"]);
        let r = tmp.path();
        let m = V1Manager::new(map);
        let res = Resources {
            pids_max: Some(5),
            ..Default::default()
        };
        assert!(matches!(
            m.create("a", &res),
            Err(CgroupError::ControllerMissing(_))
        ));
        assert!(m.list().unwrap().is_empty());
        // A leftover in one hierarchy: refused, and the dirs made before it are rolled back.
        fs::create_dir_all(r.join("cpuacct/isolab/b")).unwrap();
        assert!(matches!(
            m.create("b", &Resources::default()),
            Err(CgroupError::AlreadyExists(_))
        ));
        assert!(!r.join("memory/isolab/b").exists() && !r.join("cpu/isolab/b").exists());
        assert_eq!(m.list().unwrap(), vec!["b"]);
        m.remove("b").unwrap();
        m.remove_parent_if_empty().unwrap();
        assert!(!r.join("cpuacct/isolab").exists());
    }

    #[test]
    fn invalid_ids_refused() {
        let (_tmp, map) = fake_tree(&["memory"]);
        let m = V1Manager::new(map);
        for bad in ["../../etc", "", "UP", "a b", &"a".repeat(65)] {
            let e = m.create(bad, &Resources::default());
            assert!(matches!(e, Err(CgroupError::InvalidId(_))), "{bad}");
            assert!(matches!(m.remove(bad), Err(CgroupError::InvalidId(_))));
            assert!(m.procs_files(bad).is_empty() && m.container_dirs(bad).is_empty());
            assert_eq!(m.controller_path("memory", bad), None);
        }
    }
}
