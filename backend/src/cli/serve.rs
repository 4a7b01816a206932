//! `isolab serve`: the server, on a tokio runtime made here (the rest of the CLI is plain
//! blocking code).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use isolab_shared::protocol::Limits;
use isolab_shared::spec::MemorySize;

use crate::runtime::Paths;
use crate::server::{self, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A token attendees need (the link `http://HOST:PORT/?token=TOKEN`; `?token=` on `/ws` for
    /// the command line). Required to listen beyond loopback, unless `--insecure`.
    #[arg(
        long,
        env = "ISOLAB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Listen beyond loopback without a token: anyone who reaches the port gets containers.
    #[arg(long)]
    insecure: bool,
    /// Also let pages of this origin open `/ws` (repeatable; exact, e.g.
    /// `https://lab.example.com`: scheme, host and port, no wildcard). By default only the
    /// server's own page may (a request without an Origin, as from the command line, always
    /// may); the token, if any, is still needed.
    #[arg(long = "allow-origin", value_name = "ORIGIN", value_parser = crate::server::admission::parse_origin)]
    allowed_origins: Vec<String>,
    /// The trainers' token: it creates, watches and ends workshops (the trainer's page is
    /// `http://HOST:PORT/?trainer`). Without it a random one is made, printed, and written to
    /// `<state root>/admin-token` for `isolab workshop` on this host.
    #[arg(
        long,
        env = "ISOLAB_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A folder of lesson folders, added to the built-in lessons (one of the same name replaces
    /// a built-in one). docs/lessons.md describes them.
    #[arg(long, value_name = "DIR")]
    lessons: Option<PathBuf>,
    /// Live sessions one client address may hold (0: no cap).
    #[arg(long, default_value_t = 4)]
    max_sessions_per_ip: usize,
    /// A balancer (address or range, repeatable) whose `X-Forwarded-For` is believed: behind
    /// it, `--max-sessions-per-ip` counts the browsers' addresses, not the balancer's.
    #[arg(long = "trusted-proxy", value_name = "ADDR[/LEN]", value_parser = crate::server::admission::Cidr::parse)]
    trusted_proxies: Vec<crate::server::admission::Cidr>,
    /// No new session while less than this share of the host's memory is available (percent).
    #[arg(long, default_value_t = 10.0)]
    min_free_memory: f64,
    /// No new session while the 1-minute load average per CPU is above this.
    #[arg(long, default_value_t = 4.0)]
    max_load: f64,
    /// No new session while this many are live (0: no cap). Past it the node answers new
    /// sessions (and `/healthz`) 503, so a balancer sends them to another node.
    #[arg(long, default_value_t = 0)]
    max_sessions: usize,
    /// This node's name: in the `isolab_node` cookie a new session gets (so a balancer can
    /// keep the browser on this node), `/healthz`, `/metrics` and an `X-Isolab-Node` header.
    /// Default: the host's name.
    #[arg(long, env = "ISOLAB_NODE", value_name = "NAME")]
    node: Option<String>,
    /// No new session while less than this share of the data root's disk is free (percent).
    #[arg(long, default_value_t = 5.0)]
    min_free_disk: f64,
    /// The built page (Trunk's output).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// Containers one session may have at once.
    #[arg(long, default_value_t = 8)]
    max_containers: u32,
    /// Memory a session's containers may ask for together.
    #[arg(long, default_value = "2g")]
    session_memory: MemorySize,
    /// Memory limit of a container whose spec sets none.
    #[arg(long, default_value = "256m")]
    default_memory: MemorySize,
    /// CPUs of a container whose spec sets none.
    #[arg(long, default_value_t = 1.0)]
    default_cpus: f64,
    /// Pids limit of a container whose spec sets none.
    #[arg(long, default_value_t = 128)]
    default_pids: i64,
    /// Writable layer cap of a container whose spec sets none (0: none). Below the default
    /// memory, so that a full layer says "No space left on device" before the memory limit
    /// (what is written counts toward both).
    #[arg(long, default_value = "200m")]
    default_storage: MemorySize,
    /// Seconds a session's containers outlive its last connection (a reload reattaches).
    #[arg(long, default_value_t = 120)]
    grace: u64,
    /// Seconds without a request or keystroke after which a session ends.
    #[arg(long, default_value_t = 30 * 60)]
    idle: u64,
    /// Seconds after which a session ends whatever it does.
    #[arg(long, default_value_t = 4 * 3600)]
    lifetime: u64,
    /// No session networks: containers keep a private network namespace with only `lo`.
    #[arg(long)]
    no_network: bool,
    /// Let containers reach beyond their session's subnet (the host's networks, the internet),
    /// with NAT for that subnet only.
    #[arg(long)]
    egress: bool,
    /// A CNI configuration list to use for every session instead of isolab's (`{{name}}`,
    /// `{{bridge}}`, `{{subnet}}`, `{{gateway}}`, `{{ipam_dir}}` are filled in per session).
    #[arg(long = "cni-config", value_name = "FILE")]
    cni_config: Option<PathBuf>,
    /// Keep N containers of IMAGE made and waiting (repeatable, e.g. `--pool busybox=8`): a
    /// request for that image's default shell with a terminal then starts one of them in a
    /// few milliseconds. Off by default; each waiting container holds its memory and a pty.
    #[arg(long = "pool", value_name = "IMAGE=N", value_parser = crate::pool::PoolConfig::parse_entry)]
    pool: Vec<(String, usize)>,
    /// Where the CNI plugins are (repeatable).
    #[arg(long = "cni-path", value_name = "DIR", default_value = crate::runtime::cni::DEFAULT_PLUGIN_DIR)]
    cni_path: Vec<PathBuf>,
}

pub fn serve(paths: Paths, args: ServeArgs) -> Result<ExitCode> {
    let limits = Limits {
        max_containers: args.max_containers,
        max_session_memory: args.session_memory.bytes(),
        default_memory: args.default_memory.bytes(),
        default_cpus: args.default_cpus,
        default_pids: args.default_pids,
        default_storage: args.default_storage.bytes(),
        grace_secs: args.grace,
        idle_secs: args.idle,
        max_lifetime_secs: args.lifetime,
        ..Limits::default()
    };
    let template = match &args.cni_config {
        Some(f) => {
            Some(std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?)
        }
        None => None,
    };
    let network = crate::network::NetworkConfig {
        enabled: !args.no_network,
        egress: args.egress,
        plugin_dirs: args.cni_path,
        ipam_dir: paths.data_root.join("cni").join("ipam"),
        template,
    };
    // A template that does not render is refused at start-up, not at the first container.
    crate::network::plan::NetworkPlan::new("check", 0, args.egress)
        .render(
            network.template.as_deref().unwrap_or(r#"{"plugins": []}"#),
            &network.ipam_dir,
        )
        .map_err(anyhow::Error::msg)?;
    if !args.listen.ip().is_loopback() && args.token.is_none() && !args.insecure {
        anyhow::bail!(
            "refusing to listen on {} without a token: anyone who reaches it gets containers; \
             give --token TOKEN (attendees open http://HOST:PORT/?token=TOKEN), or --insecure",
            args.listen
        );
    }
    for (flag, token) in [
        ("--token", &args.token),
        ("--admin-token", &args.admin_token),
    ] {
        if let Some(t) = token {
            let ok = t.len() >= 8
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            anyhow::ensure!(
                ok,
                "{flag}: use at least 8 characters from A-Z a-z 0-9 - _ . (it goes in a URL)"
            );
        }
    }
    let lessons =
        crate::lessons::Catalog::load(args.lessons.as_deref()).context("load the lessons")?;
    let admission = crate::server::admission::Policy {
        token: args.token.clone(),
        max_sessions_per_ip: args.max_sessions_per_ip,
        min_free_memory_pct: args.min_free_memory,
        max_load_per_cpu: args.max_load,
        min_free_disk_pct: args.min_free_disk,
        data_root: paths.data_root.clone(),
        max_sessions: args.max_sessions,
        trusted_proxies: args.trusted_proxies,
        allowed_origins: args.allowed_origins,
        node: node_name(args.node)?,
    };
    let cfg = ServerConfig {
        admission,
        listen: args.listen,
        dist: args.dist,
        paths,
        limits,
        network,
        lessons,
        admin_token: args.admin_token,
        pool: crate::pool::PoolConfig { images: args.pool },
    };
    match crate::runtime::sys::raise_nofile_limit() {
        Ok(n) if n < 16_384 => tracing::warn!(
            "open files are limited to {n}: a container takes about 4 in the server; \
             raise the hard limit (LimitNOFILE=, ulimit -Hn) for more (docs/capacity.md)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("raise the open files limit: {e}"),
    }
    let runtime = tokio::runtime::Runtime::new().context("start tokio")?;
    runtime.block_on(server::serve(cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// The node's name: given, or the host's; a cookie value and a label, so a short plain word.
fn node_name(given: Option<String>) -> Result<String> {
    let name = match given {
        Some(n) => n,
        None => nix::unistd::gethostname()
            .context("the host's name")?
            .to_string_lossy()
            .into_owned(),
    };
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    anyhow::ensure!(
        ok,
        "--node {name:?}: use 1 to 63 characters from A-Z a-z 0-9 - _ . (it goes in a cookie)"
    );
    Ok(name)
}
