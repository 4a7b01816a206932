//! The server's counters, served at `/metrics` in Prometheus' text format (version 0.0.4).
//!
//! Plain atomics: a counter is bumped where the thing happens (a session made, a container
//! started, bytes through a terminal) and read only when scraped. Gauges that the server
//! already knows (live sessions, containers) are read at scrape time instead of kept twice.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The upper bounds of the start-latency histogram, in seconds.
const START_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why a new session was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The host past a load threshold (memory, CPU, disk, sessions).
    Busy,
    /// The client's address holds its share of sessions.
    PerAddress,
    /// No token, or the wrong one.
    Token,
    /// A cross-origin upgrade.
    Origin,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::Busy,
        Refusal::PerAddress,
        Refusal::Token,
        Refusal::Origin,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::PerAddress => "per_address",
            Refusal::Token => "token",
            Refusal::Origin => "origin",
        }
    }
}

/// A histogram with fixed buckets (cumulative counts are made when rendered).
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; START_BUCKETS.len()],
    count: AtomicU64,
    /// The sum in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = START_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in START_BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let labels = labels.trim_end_matches(',');
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Every counter of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions_started: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    starts_ok: AtomicU64,
    starts_failed: AtomicU64,
    /// Start latency of containers from a fresh create and from the warm pool.
    start_fresh: Histogram,
    start_pooled: Histogram,
    pool_hits: AtomicU64,
    pool_misses: AtomicU64,
    oom_kills: AtomicU64,
    exits: AtomicU64,
    terminal_out: AtomicU64,
    terminal_in: AtomicU64,
}

/// What is read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub node: String,
    pub sessions: usize,
    pub containers: usize,
    /// Ready containers in the warm pool.
    pub pool_ready: usize,
}

impl Metrics {
    pub fn session_started(&self) {
        self.sessions_started.fetch_add(1, Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    /// A container started (`pooled`: taken from the warm pool), `took` after it was asked for.
    pub fn started(&self, took: Duration, pooled: bool) {
        self.starts_ok.fetch_add(1, Relaxed);
        if pooled {
            self.start_pooled.observe(took);
        } else {
            self.start_fresh.observe(took);
        }
    }

    pub fn start_failed(&self) {
        self.starts_failed.fetch_add(1, Relaxed);
    }

    /// Whether a create could use the warm pool (only counted while a pool is configured).
    pub fn pool(&self, hit: bool) {
        match hit {
            true => &self.pool_hits,
            false => &self.pool_misses,
        }
        .fetch_add(1, Relaxed);
    }

    /// A container's first process ended.
    pub fn exited(&self, oom_killed: bool) {
        self.exits.fetch_add(1, Relaxed);
        if oom_killed {
            self.oom_kills.fetch_add(1, Relaxed);
        }
    }

    /// Bytes read from a terminal (towards the browser).
    pub fn terminal_output(&self, n: usize) {
        self.terminal_out.fetch_add(n as u64, Relaxed);
    }

    /// Bytes written to a terminal (typed in the browser).
    pub fn terminal_input(&self, n: usize) {
        self.terminal_in.fetch_add(n as u64, Relaxed);
    }

    /// The text `/metrics` answers.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                match labels.is_empty() {
                    true => {
                        let _ = writeln!(out, "{name} {value}");
                    }
                    false => {
                        let _ = writeln!(out, "{name}{{{labels}}} {value}");
                    }
                }
            }
        };
        let n = |a: &AtomicU64| a.load(Relaxed).to_string();
        let node = format!("node=\"{}\"", escape_label(&g.node));
        metric(
            "isolab_node_info",
            "gauge",
            "This server's node name (always 1).",
            &[(&node, "1".into())],
        );
        metric(
            "isolab_sessions",
            "gauge",
            "Live sessions (connected or within their grace period).",
            &[("", g.sessions.to_string())],
        );
        metric(
            "isolab_sessions_started_total",
            "counter",
            "Sessions started.",
            &[("", n(&self.sessions_started))],
        );
        let refused: Vec<(String, String)> = Refusal::ALL
            .iter()
            .map(|r| {
                (
                    format!("reason=\"{}\"", r.label()),
                    n(&self.refused[*r as usize]),
                )
            })
            .collect();
        let refused: Vec<(&str, String)> = refused
            .iter()
            .map(|(l, v)| (l.as_str(), v.clone()))
            .collect();
        metric(
            "isolab_sessions_refused_total",
            "counter",
            "New sessions refused, by reason.",
            &refused,
        );
        metric(
            "isolab_containers",
            "gauge",
            "Live containers of the server's sessions.",
            &[("", g.containers.to_string())],
        );
        metric(
            "isolab_container_starts_total",
            "counter",
            "Containers asked for, by result.",
            &[
                ("result=\"ok\"", n(&self.starts_ok)),
                ("result=\"error\"", n(&self.starts_failed)),
            ],
        );
        metric(
            "isolab_container_exits_total",
            "counter",
            "Containers whose first process ended.",
            &[("", n(&self.exits))],
        );
        metric(
            "isolab_oom_kills_total",
            "counter",
            "Containers whose first process the kernel's OOM killer ended.",
            &[("", n(&self.oom_kills))],
        );
        metric(
            "isolab_terminal_bytes_total",
            "counter",
            "Bytes through terminals: out of the containers, into them.",
            &[
                ("direction=\"out\"", n(&self.terminal_out)),
                ("direction=\"in\"", n(&self.terminal_in)),
            ],
        );
        metric(
            "isolab_pool_ready",
            "gauge",
            "Ready containers waiting in the warm pool.",
            &[("", g.pool_ready.to_string())],
        );
        metric(
            "isolab_pool_requests_total",
            "counter",
            "Creates that could (hit) or could not (miss) take a pooled container.",
            &[
                ("result=\"hit\"", n(&self.pool_hits)),
                ("result=\"miss\"", n(&self.pool_misses)),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP isolab_container_start_seconds From a create request to a started container."
        );
        let _ = writeln!(out, "# TYPE isolab_container_start_seconds histogram");
        self.start_fresh.render(
            &mut out,
            "isolab_container_start_seconds",
            "pooled=\"false\",",
        );
        self.start_pooled.render(
            &mut out,
            "isolab_container_start_seconds",
            "pooled=\"true\",",
        );
        process_metrics(&mut out);
        out
    }
}

/// The standard `process_*` figures of the server itself, from `/proc/self`.
fn process_metrics(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(kb) = field("VmRSS:") {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
            kb * 1024
        );
    }
    if let Some(threads) = field("Threads:") {
        let _ = writeln!(
            out,
            "# HELP process_threads Threads of the server.\n\
             # TYPE process_threads gauge\nprocess_threads {threads}"
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Open file descriptors.\n\
             # TYPE process_open_fds gauge\nprocess_open_fds {}",
            fds.count()
        );
    }
    if let Some(max) = crate::runtime::sys::nofile_limit() {
        let _ = writeln!(
            out,
            "# HELP process_max_fds The soft limit on open file descriptors.\n\
             # TYPE process_max_fds gauge\nprocess_max_fds {max}"
        );
    }
}

/// A label value as the text format wants it.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one sample line, by its name and labels as written.
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn counters_and_histogram_render_in_the_text_format() {
        let m = Metrics::default();
        m.session_started();
        m.refused(Refusal::Busy);
        m.refused(Refusal::Busy);
        m.started(Duration::from_millis(3), false);
        m.started(Duration::from_millis(40), false);
        m.started(Duration::from_millis(2), true);
        m.start_failed();
        m.exited(true);
        m.exited(false);
        m.terminal_output(100);
        m.terminal_input(7);
        m.pool(true);
        let g = Gauges {
            node: "a\"b".into(),
            sessions: 3,
            containers: 5,
            pool_ready: 2,
        };
        let text = m.render(&g);
        assert!(text.contains("isolab_node_info{node=\"a\\\"b\"} 1"));
        assert_eq!(sample(&text, "isolab_sessions"), 3.0);
        assert_eq!(sample(&text, "isolab_containers"), 5.0);
        assert_eq!(
            sample(&text, "isolab_sessions_refused_total{reason=\"busy\"}"),
            2.0
        );
        assert_eq!(
            sample(&text, "isolab_container_starts_total{result=\"ok\"}"),
            3.0
        );
        assert_eq!(sample(&text, "isolab_oom_kills_total"), 1.0);
        assert_eq!(
            sample(&text, "isolab_terminal_bytes_total{direction=\"out\"}"),
            100.0
        );
        assert_eq!(
            sample(&text, "isolab_pool_requests_total{result=\"hit\"}"),
            1.0
        );
        let fresh = "isolab_container_start_seconds_bucket{pooled=\"false\",";
        assert_eq!(sample(&text, &format!("{fresh}le=\"0.005\"}}")), 1.0);
        assert_eq!(sample(&text, &format!("{fresh}le=\"0.05\"}}")), 2.0);
        assert_eq!(sample(&text, &format!("{fresh}le=\"+Inf\"}}")), 2.0);
        assert_eq!(
            sample(
                &text,
                "isolab_container_start_seconds_count{pooled=\"true\"}"
            ),
            1.0
        );
        let sum = sample(
            &text,
            "isolab_container_start_seconds_sum{pooled=\"false\"}",
        );
        assert!((sum - 0.043).abs() < 1e-9, "{sum}");
        // Every sample line belongs to a declared metric.
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                declared.contains(&name) || declared.contains(&base),
                "{line}"
            );
        }
    }
}
