//! Unified (v2) backend: a container is `<root>/isolab/<id>`, with `memory`, `cpu` and `pids`
//! delegated to it through the root's and `isolab`'s `cgroup.subtree_control`.

use std::io;
use std::path::{Path, PathBuf};

use super::{
    ensure_dir, kill_and_wait, limit_value, list_ids, mkdir_new, read_procs, rmdir_if_unused,
    rmdir_retry, validate_id, write_file, CgroupError, CgroupManager, CgroupVersion, Resources,
    Sources, Stats, PARENT,
};

/// Controllers enabled for containers.
const WANTED: [&str; 3] = ["memory", "cpu", "pids"];
/// Default CFS period (µs) used when only a quota is given.
const DEFAULT_PERIOD_US: u64 = 100_000;

/// cgroup v2 manager rooted at a cgroup2 mount.
#[derive(Debug, Clone)]
pub struct V2Manager {
    root: PathBuf,
}

impl V2Manager {
    pub fn new(root: &Path) -> Self {
        V2Manager {
            root: root.to_path_buf(),
        }
    }

    fn parent(&self) -> PathBuf {
        self.root.join(PARENT)
    }

    fn dir(&self, id: &str) -> Result<PathBuf, CgroupError> {
        validate_id(id)?;
        Ok(self.parent().join(id))
    }

    /// Make `isolab` and delegate the wanted controllers down to containers.
    fn ensure_parent(&self) -> Result<(), CgroupError> {
        enable_controllers(&self.root)?;
        let parent = self.parent();
        ensure_dir(&parent)?;
        enable_controllers(&parent)
    }

    fn apply(&self, dir: &Path, res: &Resources) -> Result<(), CgroupError> {
        if let Some(bytes) = res.memory_bytes {
            need_controller(dir, "memory")?;
            write_file(&dir.join("memory.max"), &bytes.to_string())?;
            let swap = "memory.swap.max";
            if dir.join(swap).exists() || self.parent().join(swap).exists() {
                write_file(&dir.join(swap), "0")?;
            }
        }
        if res.cpu_quota_us.is_some() || res.cpu_period_us.is_some() {
            need_controller(dir, "cpu")?;
            let quota = match res.cpu_quota_us {
                Some(q) if q >= 0 => q.to_string(),
                _ => "max".to_string(),
            };
            let period = res.cpu_period_us.unwrap_or(DEFAULT_PERIOD_US);
            write_file(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(max) = res.pids_max {
            need_controller(dir, "pids")?;
            write_file(&dir.join("pids.max"), &limit_value(max))?;
        }
        if !res.devices.is_empty() {
            // No devices.* files on v2: the rules are an eBPF program on the cgroup.
            super::device_filter::attach(dir, &res.devices)?;
        }
        Ok(())
    }

    /// The container dir, or NotFound when it does not exist.
    fn existing(&self, id: &str) -> Result<PathBuf, CgroupError> {
        let dir = self.dir(id)?;
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(CgroupError::NotFound(dir))
        }
    }
}

/// Enable the wanted controllers in `dir`'s subtree_control as far as `cgroup.controllers`
/// allows. Failures are logged (a limit needing the controller will fail later, clearly).
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let read = |name: &str| -> Result<String, CgroupError> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(CgroupError::io("read", &path, e)),
        }
    };
    let available = read("cgroup.controllers")?;
    let enabled = read("cgroup.subtree_control")?;
    let missing: Vec<String> = WANTED
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .filter(|c| !enabled.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    if write_file(&path, &missing.join(" ")).is_ok() {
        return Ok(());
    }
    // All at once failed: get as many as possible.
    for c in &missing {
        if let Err(e) = write_file(&path, c) {
            tracing::warn!("cgroup v2: cannot enable {c}: {e}");
        }
    }
    Ok(())
}

/// On a real cgroupfs the child's cgroup.controllers tells what it may use (fakes lack it).
fn need_controller(dir: &Path, name: &str) -> Result<(), CgroupError> {
    match std::fs::read_to_string(dir.join("cgroup.controllers")) {
        Ok(s) if !s.split_whitespace().any(|c| c == name) => {
            Err(CgroupError::ControllerMissing(name.to_string()))
        }
        _ => Ok(()),
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self, id: &str, res: &Resources) -> Result<(), CgroupError> {
        let dir = self.dir(id)?;
        self.ensure_parent()?;
        match mkdir_new(&dir) {
            // The parent vanished under us (a concurrent gc): make it again, once.
            Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                self.ensure_parent()?;
                mkdir_new(&dir)?;
            }
            other => other?,
        }
        if let Err(e) = self.apply(&dir, res) {
            let _ = rmdir_retry(&dir);
            return Err(e);
        }
        Ok(())
    }

    fn update(&self, id: &str, res: &Resources) -> Result<(), CgroupError> {
        let res = Resources {
            devices: Vec::new(),
            ..res.clone()
        };
        self.apply(&self.existing(id)?, &res)
    }

    fn procs_files(&self, id: &str) -> Vec<PathBuf> {
        match self.dir(id) {
            Ok(dir) => vec![dir.join("cgroup.procs")],
            Err(_) => Vec::new(),
        }
    }

    fn add_process(&self, id: &str, pid: i32) -> Result<(), CgroupError> {
        let dir = self.existing(id)?;
        write_file(&dir.join("cgroup.procs"), &pid.to_string())
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>, CgroupError> {
        let mut pids = read_procs(&self.existing(id)?.join("cgroup.procs"))?;
        pids.sort_unstable();
        Ok(pids)
    }

    fn stats(&self, id: &str) -> Result<Stats, CgroupError> {
        self.stats_sources(id)?.read()
    }

    fn stats_sources(&self, id: &str) -> Result<Sources, CgroupError> {
        Ok(Sources::V2(self.existing(id)?))
    }

    fn kill_all(&self, id: &str) -> Result<(), CgroupError> {
        let dir = self.dir(id)?;
        if !dir.is_dir() {
            return Ok(());
        }
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            write_file(&kill_file, "1")?;
        }
        let procs = dir.join("cgroup.procs");
        kill_and_wait(&dir, || match read_procs(&procs) {
            Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            other => other,
        })
    }

    fn remove(&self, id: &str) -> Result<(), CgroupError> {
        rmdir_retry(&self.dir(id)?)
    }

    fn remove_parent_if_empty(&self) -> Result<(), CgroupError> {
        if self.list()?.is_empty() {
            rmdir_if_unused(&self.parent())?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        list_ids(&self.parent())
    }

    fn container_dirs(&self, _id: &str) -> Vec<(String, PathBuf)> {
        Vec::new()
    }

    fn path(&self, id: &str) -> PathBuf {
        // An invalid id maps to a name mkdir never makes, so observers simply see nothing.
        self.dir(id)
            .unwrap_or_else(|_| self.parent().join(".invalid-id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(tmp.path().join("cgroup.subtree_control"), "").unwrap();
        tmp
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn create_writes_limits() {
        let tmp = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        let root = tmp.path();
        // Swap accounting is on: the parent (made in advance here) has memory.swap.max.
        fs::create_dir(root.join("isolab")).unwrap();
        fs::write(root.join("isolab/memory.swap.max"), "max\n").unwrap();
        let m = V2Manager::new(root);
        let res = Resources {
            memory_bytes: Some(64 << 20),
            cpu_quota_us: Some(50_000),
            cpu_period_us: None,
            pids_max: Some(100),
            devices: Vec::new(),
        };
        m.create("abc1", &res).unwrap();
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        let d = root.join("isolab/abc1");
        assert_eq!(m.path("abc1"), d);
        assert_eq!(read(d.join("memory.max")), "67108864");
        assert_eq!(read(d.join("memory.swap.max")), "0");
        assert_eq!(read(d.join("cpu.max")), "50000 100000");
        assert_eq!(read(d.join("pids.max")), "100");
        assert_eq!(m.procs_files("abc1"), vec![d.join("cgroup.procs")]);
        assert!(m.container_dirs("abc1").is_empty());
        assert_eq!(m.version(), CgroupVersion::V2);

        assert!(matches!(
            m.create("abc1", &res),
            Err(CgroupError::AlreadyExists(_))
        ));
        let res2 = Resources {
            cpu_quota_us: Some(-1),
            cpu_period_us: Some(20_000),
            pids_max: Some(-1),
            ..Default::default()
        };
        m.create("abc2", &res2).unwrap();
        let d2 = root.join("isolab/abc2");
        assert_eq!(read(d2.join("cpu.max")), "max 20000");
        assert_eq!(read(d2.join("pids.max")), "max");
        assert!(!d2.join("memory.max").exists());
        assert_eq!(m.list().unwrap(), vec!["abc1", "abc2"]);
    }

    #[test]
    fn no_swap_file_without_accounting_and_subtree_already_on() {
        let tmp = fake_root("cpu memory pids");
        let root = tmp.path();
        fs::write(root.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        let m = V2Manager::new(root);
        let res = Resources {
            memory_bytes: Some(4096),
            ..Default::default()
        };
        m.create("x", &res).unwrap();
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "cpu memory pids\n"
        );
        assert!(!root.join("isolab/x/memory.swap.max").exists());
    }

    #[test]
    fn lifecycle_on_fake_tree() {
        let tmp = fake_root("cpu memory pids");
        let root = tmp.path();
        let m = V2Manager::new(root);
        // Missing cgroup: kill/remove are fine, queries are NotFound.
        m.kill_all("gone").unwrap();
        m.remove("gone").unwrap();
        assert!(matches!(m.pids("gone"), Err(CgroupError::NotFound(_))));
        assert!(matches!(m.stats("gone"), Err(CgroupError::NotFound(_))));
        assert!(m.list().unwrap().is_empty());

        m.create("c1", &Resources::default()).unwrap();
        let d = root.join("isolab/c1");
        m.add_process("c1", 4242).unwrap();
        assert_eq!(read(d.join("cgroup.procs")), "4242");
        assert_eq!(m.pids("c1").unwrap(), vec![4242]);
        fs::write(d.join("memory.current"), "100\n").unwrap();
        assert_eq!(m.stats("c1").unwrap().memory_current, 100);

        // Empty cgroup with cgroup.kill: kill writes it and returns at once.
        fs::write(d.join("cgroup.procs"), "").unwrap();
        fs::write(d.join("cgroup.kill"), "").unwrap();
        m.kill_all("c1").unwrap();
        assert_eq!(read(d.join("cgroup.kill")), "1");

        // A fake dir holds files, so rmdir fails (ENOTEMPTY) - clear them like the kernel would.
        for f in fs::read_dir(&d).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        m.remove("c1").unwrap();
        assert!(!d.exists());
        assert!(m.list().unwrap().is_empty());
        m.remove_parent_if_empty().unwrap();
        assert!(!root.join("isolab").exists());
    }

    #[test]
    fn invalid_ids_refused() {
        let tmp = fake_root("cpu memory pids");
        let m = V2Manager::new(tmp.path());
        for bad in ["../x", "", "A", "a/b", ".."] {
            assert!(matches!(
                m.create(bad, &Resources::default()),
                Err(CgroupError::InvalidId(_))
            ));
            assert!(matches!(m.remove(bad), Err(CgroupError::InvalidId(_))));
            assert!(matches!(m.kill_all(bad), Err(CgroupError::InvalidId(_))));
            assert!(m.procs_files(bad).is_empty());
        }
        // Foreign names in the parent are not reported as containers.
        fs::create_dir_all(tmp.path().join("isolab/Not-An-Id")).unwrap();
        assert!(m.list().unwrap().is_empty());
    }
}
