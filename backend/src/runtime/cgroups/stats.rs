//! One [`Stats`] shape for both cgroup versions, and the readers filling it from v1 and v2
//! interface files. A missing file (controller not enabled or not mounted) reads as zero/None.

use std::io;
use std::path::Path;

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

/// Read a v1 container from its dirs in the memory, cpu, cpuacct and pids hierarchies.
pub(super) fn read_v1(
    memory: Option<&Path>,
    cpu: Option<&Path>,
    cpuacct: Option<&Path>,
    pids: Option<&Path>,
) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(dir) = memory {
        s.memory_current = read_u64(&dir.join("memory.usage_in_bytes"))?.unwrap_or(0);
        s.memory_peak = read_u64(&dir.join("memory.max_usage_in_bytes"))?;
        s.memory_limit =
            read_u64(&dir.join("memory.limit_in_bytes"))?.filter(|&v| v < V1_UNLIMITED);
        s.oom_kills = read_keyed(&dir.join("memory.oom_control"), "oom_kill")?.unwrap_or(0);
    }
    if let Some(dir) = cpuacct {
        s.cpu_usage_usec = read_u64(&dir.join("cpuacct.usage"))?.unwrap_or(0) / 1000;
    }
    if let Some(dir) = cpu {
        let path = dir.join("cpu.stat");
        s.cpu_throttled_usec = read_keyed(&path, "throttled_time")?.unwrap_or(0) / 1000;
        s.cpu_nr_throttled = read_keyed(&path, "nr_throttled")?.unwrap_or(0);
    }
    if let Some(dir) = pids {
        s.pids_current = read_u64(&dir.join("pids.current"))?.unwrap_or(0);
        s.pids_limit = read_u64(&dir.join("pids.max"))?;
    }
    Ok(s)
}

/// Read a v2 container from its cgroup dir.
pub(super) fn read_v2(dir: &Path) -> Result<Stats, CgroupError> {
    let cpu_stat = dir.join("cpu.stat");
    Ok(Stats {
        memory_current: read_u64(&dir.join("memory.current"))?.unwrap_or(0),
        memory_peak: read_u64(&dir.join("memory.peak"))?,
        memory_limit: read_u64(&dir.join("memory.max"))?,
        oom_kills: read_keyed(&dir.join("memory.events"), "oom_kill")?.unwrap_or(0),
        cpu_usage_usec: read_keyed(&cpu_stat, "usage_usec")?.unwrap_or(0),
        cpu_throttled_usec: read_keyed(&cpu_stat, "throttled_usec")?.unwrap_or(0),
        cpu_nr_throttled: read_keyed(&cpu_stat, "nr_throttled")?.unwrap_or(0),
        pids_current: read_u64(&dir.join("pids.current"))?.unwrap_or(0),
        pids_limit: read_u64(&dir.join("pids.max"))?,
    })
}

/// File contents, or None when the file does not exist.
fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

fn parse(path: &Path, value: &str) -> Result<u64, CgroupError> {
    value.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        value: value.to_string(),
    })
}

/// A single-value file; "max" (unlimited) and a missing file give None.
fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_opt(path)?.as_deref().map(str::trim) {
        None | Some("max") => Ok(None),
        Some(v) => parse(path, v).map(Some),
    }
}

/// The value of `key` in a flat keyed file ("key value" per line).
fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read_opt(path)? else {
        return Ok(None);
    };
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
