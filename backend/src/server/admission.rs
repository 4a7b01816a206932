//! Who may open a session: the token (a server reachable beyond loopback needs one), the
//! host's load (no new session when memory, CPU or disk is past a threshold), and a cap on
//! live sessions per client address. `/healthz` reports the same figures, so a balancer can
//! drop a busy node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The server's admission policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Needed in `?token=` (or the `isolab_token` cookie) to open `/ws`; None: no token.
    pub token: Option<String>,
    /// Live sessions one client address may hold (0: no cap).
    pub max_sessions_per_ip: usize,
    /// No new session below this share of the host's memory available (percent).
    pub min_free_memory_pct: f64,
    /// No new session while the 1-minute load average per CPU is above this.
    pub max_load_per_cpu: f64,
    /// No new session below this share of free space where containers are written (percent).
    pub min_free_disk_pct: f64,
    /// The data root, whose file system is the "disk".
    pub data_root: PathBuf,
    /// No new session while this many are live (0: no cap): the node's share of a cluster.
    pub max_sessions: usize,
    /// This node's name (in `/healthz`, `/metrics`, the `isolab_node` cookie).
    pub node: String,
    /// Balancers whose `X-Forwarded-For` is believed: behind one, the per-address cap counts
    /// the browser's address, not the balancer's.
    pub trusted_proxies: Vec<Cidr>,
    /// Pages of other origins (exact, `scheme://host[:port]`, as [`parse_origin`] writes them)
    /// that may open `/ws`, besides the server's own.
    pub allowed_origins: Vec<String>,
}

/// An exact origin for `--allow-origin`: `http(s)://host[:port]`, written as a browser sends it
/// in `Origin` (lower case, no default port, no path), so that it compares as text.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("{text:?}: {why}; give an exact origin such as https://lab.example.com")
    };
    let lower = text.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(bad("the scheme must be http or https")),
    };
    // A single trailing slash is forgiven (a copied address); any other path is not an origin.
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.contains(['/', '?', '#', '@', '*']) || host.contains(char::is_whitespace) {
        return Err(bad("an origin is only a scheme, a host and a port"));
    }
    if let Some((name, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if name.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("a bad port"));
        }
    }
    let host = host.strip_suffix(default_port).unwrap_or(host);
    Ok(format!("{scheme}://{host}"))
}

/// An address range, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("{text:?}: an address or a range such as 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let (net, width) = bits(self.addr);
        let (ip, ip_width) = bits(ip.to_canonical());
        if width != ip_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (ip >> shift)
    }
}

/// The browser's address: the connection's peer, or, when the peer is a trusted balancer, the
/// last address in `X-Forwarded-For` that is not one (each proxy appends the address it got
/// the request from, so the entries to the right of the first untrusted one are ours).
pub fn client_ip(peer: IpAddr, forwarded: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    forwarded
        .into_iter()
        .flat_map(|v| v.rsplit(','))
        .map_while(|entry| entry.trim().parse::<IpAddr>().ok())
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

/// The host's load, as `/healthz` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// `ok`, or `busy` when new sessions are refused.
    pub status: &'static str,
    /// Why it is busy (empty when ok).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub memory_available_pct: f64,
    pub load1_per_cpu: f64,
    pub disk_free_pct: f64,
    pub sessions: usize,
    pub node: String,
}

impl Policy {
    /// The host's load now, judged against the thresholds.
    pub fn load(&self, sessions: usize) -> Load {
        let memory = memory_available_pct().unwrap_or(100.0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let load1 = load1().unwrap_or(0.0) / cpus;
        let disk = disk_free_pct(&self.data_root).unwrap_or(100.0);
        let mut reasons = Vec::new();
        if memory < self.min_free_memory_pct {
            reasons.push(format!(
                "memory: {memory:.0}% available, below {:.0}%",
                self.min_free_memory_pct
            ));
        }
        if load1 > self.max_load_per_cpu {
            reasons.push(format!(
                "CPU: load {load1:.1} per CPU, above {:.1}",
                self.max_load_per_cpu
            ));
        }
        if self.max_sessions > 0 && sessions >= self.max_sessions {
            reasons.push(format!(
                "sessions: {sessions} live, the most this node takes is {}",
                self.max_sessions
            ));
        }
        if disk < self.min_free_disk_pct {
            reasons.push(format!(
                "disk: {disk:.0}% free, below {:.0}%",
                self.min_free_disk_pct
            ));
        }
        Load {
            status: if reasons.is_empty() { "ok" } else { "busy" },
            reasons,
            memory_available_pct: round1(memory),
            load1_per_cpu: round1(load1),
            disk_free_pct: round1(disk),
            sessions,
            node: self.node.clone(),
        }
    }

    /// Whether `given` (from the query or the cookie) is the token; true when none is set.
    pub fn token_ok(&self, given: Option<&str>) -> bool {
        match (&self.token, given) {
            (None, _) => true,
            (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got.as_bytes()),
            (Some(_), None) => false,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Compare without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// MemAvailable / MemTotal from `/proc/meminfo`, in percent.
fn memory_available_pct() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(100.0 * field("MemAvailable:")? / field("MemTotal:")?)
}

/// The 1-minute load average from `/proc/loadavg`.
fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Free space (for unprivileged users, as a container's writes see it) of the file system
/// holding `path`, in percent.
fn disk_free_pct(path: &std::path::Path) -> Option<f64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let total = st.blocks() as f64;
    (total > 0.0).then(|| 100.0 * st.blocks_available() as f64 / total)
}

/// Live sessions per client address.
#[derive(Debug, Default)]
pub struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// A session counted against its address until dropped.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Count a new session from `ip`, unless it already has `max` (0: no cap).
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            token: Some("s3cret".into()),
            max_sessions_per_ip: 2,
            min_free_memory_pct: 0.0,
            max_load_per_cpu: f64::INFINITY,
            min_free_disk_pct: 0.0,
            data_root: PathBuf::from("/"),
            max_sessions: 0,
            node: "n1".into(),
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }

    #[test]
    fn an_allowed_origin_is_exact_and_written_as_a_browser_sends_it() {
        let ok = |s: &str| parse_origin(s).unwrap();
        assert_eq!(ok("https://lab.example.com"), "https://lab.example.com");
        assert_eq!(ok("HTTPS://Lab.Example.COM/"), "https://lab.example.com");
        assert_eq!(ok("https://lab.example.com:443"), "https://lab.example.com");
        assert_eq!(ok("http://lab.example.com:80"), "http://lab.example.com");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(ok("http://[::1]"), "http://[::1]");
        for bad in [
            "lab.example.com",
            "ftp://lab.example.com",
            "https://",
            "https://lab.example.com/page",
            "https://*.example.com",
            "https://lab.example.com:port",
            "https://lab.example.com:99999",
            "https://user@lab.example.com",
            "*",
            "null",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_browser_address_comes_from_a_trusted_balancer_only() {
        let lb = [
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("::1").unwrap(),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Not a balancer: its own address, whatever it says.
        assert_eq!(
            client_ip(ip("192.0.2.9"), Some("203.0.113.5"), &lb),
            ip("192.0.2.9")
        );
        // A balancer: the last untrusted entry (a forged left part is ignored).
        assert_eq!(
            client_ip(ip("10.1.2.3"), Some("1.1.1.1, 203.0.113.5"), &lb),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(ip("10.1.2.3"), Some("203.0.113.5, 10.9.9.9"), &lb),
            ip("203.0.113.5"),
            "two balancers in a row"
        );
        assert_eq!(client_ip(ip("10.1.2.3"), None, &lb), ip("10.1.2.3"));
        assert_eq!(
            client_ip(ip("10.1.2.3"), Some("garbage"), &lb),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_ip(ip("::1"), Some("2001:db8::7"), &lb),
            ip("2001:db8::7")
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("10.0.0.0/8").unwrap().contains(ip("11.0.0.1")));
        assert!(Cidr::parse("10.0.0.0/8")
            .unwrap()
            .contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn the_token_must_match_exactly() {
        let p = policy();
        assert!(p.token_ok(Some("s3cret")));
        for bad in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3cret "),
            Some("S3CRET"),
        ] {
            assert!(!p.token_ok(bad), "{bad:?}");
        }
        let open = Policy {
            token: None,
            ..policy()
        };
        assert!(open.token_ok(None));
    }

    #[test]
    fn thresholds_make_the_host_busy() {
        let p = policy();
        let load = p.load(3);
        assert_eq!((load.status, load.sessions), ("ok", 3));
        assert!(load.memory_available_pct > 0.0 && load.memory_available_pct <= 100.0);
        let strict = Policy {
            min_free_memory_pct: 101.0,
            min_free_disk_pct: 101.0,
            max_load_per_cpu: -1.0,
            ..policy()
        };
        let load = strict.load(0);
        assert_eq!(load.status, "busy");
        assert_eq!(load.reasons.len(), 3, "{:?}", load.reasons);
    }

    #[test]
    fn a_node_is_busy_at_its_session_cap() {
        let capped = Policy {
            max_sessions: 2,
            ..policy()
        };
        assert_eq!(capped.load(1).status, "ok");
        let load = capped.load(2);
        assert_eq!((load.status, load.node.as_str()), ("busy", "n1"));
        assert!(load.reasons[0].starts_with("sessions: 2 live"), "{load:?}");
        assert_eq!(policy().load(10_000).status, "ok", "0: no cap");
    }

    #[test]
    fn sessions_per_address_are_capped_and_freed() {
        let counts = Arc::new(PerIp::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = counts.take(ip, 2).unwrap();
        let _b = counts.take(ip, 2).unwrap();
        assert!(counts.take(ip, 2).is_none());
        assert!(counts.take("192.0.2.8".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(counts.take(ip, 2).is_some());
        assert!(counts.take(ip, 0).is_some(), "0: no cap");
    }
}
