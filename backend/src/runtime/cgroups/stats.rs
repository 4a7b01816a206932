//! One [`Stats`] shape for both cgroup versions, and the readers filling it from v1 and v2
//! interface files. A missing file (controller not enabled or not mounted) reads as zero/None.

use std::io;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// v1 limits at or above this are the kernel's "unlimited" (PAGE_COUNTER_MAX scaled).
const V1_UNLIMITED: u64 = 1 << 62;

/// Resource usage of one container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Memory in use now (bytes).
    pub memory_current: u64,
    /// Highest memory use seen (bytes), when the kernel reports it.
    pub memory_peak: Option<u64>,
    /// Memory limit (bytes); None when unlimited.
    pub memory_limit: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kills: u64,
    /// CPU time used (µs).
    pub cpu_usage_usec: u64,
    /// Time throttled by the CFS quota (µs).
    pub cpu_throttled_usec: u64,
    /// Number of periods that were throttled.
    pub cpu_nr_throttled: u64,
    /// Tasks in the cgroup now.
    pub pids_current: u64,
    /// Task limit; None when unlimited.
    pub pids_limit: Option<u64>,
}

/// Where a container's [`Stats`] are read from, found once (which of its dirs exist): a reader
/// that reads them again and again (the live view, several times a second) may keep the files
/// open instead of walking their paths each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    /// The container's dirs in the memory, cpu, cpuacct and pids hierarchies (those that exist).
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    /// The container's cgroup dir.
    V2(PathBuf),
}

/// Reads a whole file: its contents, or None when it does not exist.
pub type ReadFile<'a> = dyn FnMut(&Path) -> io::Result<Option<String>> + 'a;

impl Sources {
    /// Read every figure, opening each file.
    pub fn read(&self) -> Result<Stats, CgroupError> {
        self.read_with(&mut |path: &Path| match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// Read every figure through `read` (a missing file reads as zero/None).
    pub fn read_with(&self, read: &mut ReadFile<'_>) -> Result<Stats, CgroupError> {
        let mut f = Files(read);
        match self {
            Sources::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => {
                let mut s = Stats::default();
                if let Some(dir) = memory {
                    s.memory_current = f.u64(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0);
                    s.memory_peak = f.u64(&dir.join("memory.max_usage_in_bytes"))?;
                    s.memory_limit = f
                        .u64(&dir.join("memory.limit_in_bytes"))?
                        .filter(|&v| v < V1_UNLIMITED);
                    s.oom_kills = f
                        .keyed(&dir.join("memory.oom_control"), &["oom_kill"])?
                        .pop()
                        .flatten()
                        .unwrap_or(0);
                }
                if let Some(dir) = cpuacct {
                    s.cpu_usage_usec = f.u64(&dir.join("cpuacct.usage"))?.unwrap_or(0) / 1000;
                }
                if let Some(dir) = cpu {
                    let v = f.keyed(&dir.join("cpu.stat"), &["throttled_time", "nr_throttled"])?;
                    s.cpu_throttled_usec = v.first().copied().flatten().unwrap_or(0) / 1000;
                    s.cpu_nr_throttled = v.get(1).copied().flatten().unwrap_or(0);
                }
                if let Some(dir) = pids {
                    s.pids_current = f.u64(&dir.join("pids.current"))?.unwrap_or(0);
                    s.pids_limit = f.u64(&dir.join("pids.max"))?;
                }
                Ok(s)
            }
            Sources::V2(dir) => {
                let cpu = f.keyed(
                    &dir.join("cpu.stat"),
                    &["usage_usec", "throttled_usec", "nr_throttled"],
                )?;
                let cpu = |i: usize| cpu.get(i).copied().flatten().unwrap_or(0);
                Ok(Stats {
                    memory_current: f.u64(&dir.join("memory.current"))?.unwrap_or(0),
                    memory_peak: f.u64(&dir.join("memory.peak"))?,
                    memory_limit: f.u64(&dir.join("memory.max"))?,
                    oom_kills: f
                        .keyed(&dir.join("memory.events"), &["oom_kill"])?
                        .pop()
                        .flatten()
                        .unwrap_or(0),
                    cpu_usage_usec: cpu(0),
                    cpu_throttled_usec: cpu(1),
                    cpu_nr_throttled: cpu(2),
                    pids_current: f.u64(&dir.join("pids.current"))?.unwrap_or(0),
                    pids_limit: f.u64(&dir.join("pids.max"))?,
                })
            }
        }
    }
}

/// Read a v1 container from its dirs in the memory, cpu, cpuacct and pids hierarchies.
#[cfg(test)]
fn read_v1(
    memory: Option<&Path>,
    cpu: Option<&Path>,
    cpuacct: Option<&Path>,
    pids: Option<&Path>,
) -> Result<Stats, CgroupError> {
    Sources::V1 {
        memory: memory.map(Path::to_path_buf),
        cpu: cpu.map(Path::to_path_buf),
        cpuacct: cpuacct.map(Path::to_path_buf),
        pids: pids.map(Path::to_path_buf),
    }
    .read()
}

/// Read a v2 container from its cgroup dir.
#[cfg(test)]
fn read_v2(dir: &Path) -> Result<Stats, CgroupError> {
    Sources::V2(dir.to_path_buf()).read()
}

/// The interface files, read through a [`ReadFile`].
struct Files<'r, 'a>(&'r mut ReadFile<'a>);

impl Files<'_, '_> {
    /// File contents, or None when the file does not exist.
    fn text(&mut self, path: &Path) -> Result<Option<String>, CgroupError> {
        (self.0)(path).map_err(|e| CgroupError::io("read", path, e))
    }

    /// A single-value file; "max" (unlimited) and a missing file give None.
    fn u64(&mut self, path: &Path) -> Result<Option<u64>, CgroupError> {
        match self.text(path)?.as_deref().map(str::trim) {
            None | Some("max") => Ok(None),
            Some(v) => parse(path, v).map(Some),
        }
    }

    /// The values of `keys` in a flat keyed file ("key value" per line), in that order: one
    /// read for all of them (a missing file or key gives None).
    fn keyed(&mut self, path: &Path, keys: &[&str]) -> Result<Vec<Option<u64>>, CgroupError> {
        let Some(text) = self.text(path)? else {
            return Ok(vec![None; keys.len()]);
        };
        keys.iter()
            .map(|key| keyed_value(path, &text, key))
            .collect()
    }
}

fn parse(path: &Path, value: &str) -> Result<u64, CgroupError> {
    value.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        value: value.to_string(),
    })
}

/// The value of `key` in a flat keyed text: the first line naming it.
fn keyed_value(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().unwrap_or("");
            return parse(path, value).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v2_stats_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("memory.current"), "1048576\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 9\nnr_throttled 4\nthrottled_usec 777\n",
        )
        .unwrap();
        fs::write(d.join("pids.current"), "3\n").unwrap();
        fs::write(d.join("pids.max"), "64\n").unwrap();
        let s = read_v2(d).unwrap();
        assert_eq!(
            s,
            Stats {
                memory_current: 1048576,
                memory_peak: None,
                memory_limit: None,
                oom_kills: 2,
                cpu_usage_usec: 5000,
                cpu_throttled_usec: 777,
                cpu_nr_throttled: 4,
                pids_current: 3,
                pids_limit: Some(64),
            }
        );
        fs::write(d.join("memory.peak"), "2097152\n").unwrap();
        fs::write(d.join("memory.max"), "4194304\n").unwrap();
        let s = read_v2(d).unwrap();
        assert_eq!(s.memory_peak, Some(2097152));
        assert_eq!(s.memory_limit, Some(4194304));
        fs::write(d.join("pids.current"), "x\n").unwrap();
        assert!(matches!(read_v2(d), Err(CgroupError::Parse { .. })));
    }

    #[test]
    fn v1_stats_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("memory.usage_in_bytes"), "4096\n").unwrap();
        fs::write(d.join("memory.max_usage_in_bytes"), "8192\n").unwrap();
        fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        fs::write(d.join("cpuacct.usage"), "123456789\n").unwrap();
        fs::write(
            d.join("cpu.stat"),
            "nr_periods 10\nnr_throttled 2\nthrottled_time 3000000\n",
        )
        .unwrap();
        fs::write(d.join("pids.current"), "1\n").unwrap();
        fs::write(d.join("pids.max"), "max\n").unwrap();
        let s = read_v1(Some(d), Some(d), Some(d), Some(d)).unwrap();
        assert_eq!(
            s,
            Stats {
                memory_current: 4096,
                memory_peak: Some(8192),
                memory_limit: None,
                oom_kills: 5,
                cpu_usage_usec: 123456,
                cpu_throttled_usec: 3000,
                cpu_nr_throttled: 2,
                pids_current: 1,
                pids_limit: None,
            }
        );
        fs::write(d.join("memory.limit_in_bytes"), "1048576\n").unwrap();
        fs::write(d.join("pids.max"), "10\n").unwrap();
        let s = read_v1(Some(d), None, None, Some(d)).unwrap();
        assert_eq!(s.memory_limit, Some(1048576));
        assert_eq!(s.pids_limit, Some(10));
        assert_eq!(s.cpu_usage_usec, 0);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["memory_limit"], 1048576);
    }
}
