//! The server edge (axum): the built page, `/healthz`, and `/ws`, whose connections become
//! sessions ([`crate::session`]). No runtime work happens here.
//!
//! At start-up it claims its state root and network namespace (one server each, [`exclusive`]),
//! then removes what a crashed run left (`gc`); on SIGTERM or Ctrl-C it stops taking
//! connections, ends every session (each removes its containers) and waits for them.

pub mod admission;
mod exclusive;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use isolab_shared::protocol::Limits;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;

use crate::runtime::container::Runtime;
use crate::runtime::Paths;
use crate::session::registry::Registry;

/// What `isolab serve` is told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The built page (`dist/`).
    pub dist: PathBuf,
    pub paths: Paths,
    pub limits: Limits,
    pub network: crate::network::NetworkConfig,
    /// Token, load thresholds, sessions per address.
    pub admission: admission::Policy,
    /// The lessons offered.
    pub lessons: crate::lessons::Catalog,
    /// The trainers' token; None: a random one, written to `<state root>/admin-token`.
    pub admin_token: Option<String>,
    /// Ready containers to keep per image (none by default).
    pub pool: crate::pool::PoolConfig,
}

/// Shared by every connection.
#[derive(Clone)]
pub struct AppState {
    pub runtime: Arc<Runtime>,
    pub limits: Limits,
    /// Cancelled on SIGTERM / Ctrl-C: every session ends and removes its containers.
    pub shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for their cleanup.
    pub sessions: TaskTracker,
    /// Live sessions by their browser's cookie.
    pub registry: Arc<Registry>,
    /// Session networks: subnets and published ports.
    pub networks: Arc<crate::network::Networks>,
    /// Who may open a session.
    pub admission: Arc<admission::Policy>,
    /// Live sessions per client address.
    pub per_ip: Arc<admission::PerIp>,
    /// The lessons offered, and the workshops running.
    pub lessons: Arc<crate::lessons::Catalog>,
    pub workshops: Arc<crate::workshop::Workshops>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Live containers of every session (a gauge of `/metrics`).
    pub containers: Arc<std::sync::atomic::AtomicUsize>,
    /// The warm pool, when configured.
    pub pool: Option<Arc<crate::pool::Pool>>,
}

pub fn router(state: AppState, dist: PathBuf) -> Router {
    let page = ServeDir::new(&dist).append_index_html_on_directories(true);
    Router::new()
        .route("/healthz", get(ws::healthz))
        .route("/readyz", get(ws::readyz))
        .route("/metrics", get(ws::metrics))
        .route("/ws", get(ws::upgrade))
        .fallback_service(page)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ws::page_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ws::node_header,
        ))
        .with_state(state)
}

/// Run until SIGTERM or Ctrl-C; then remove every container and return.
pub async fn serve(cfg: ServerConfig) -> Result<()> {
    // Caught from the first moment: a SIGTERM during start-up (or just after the URL is out)
    // must still end in a clean shutdown, not the default disposition's instant exit.
    let stop = StopSignals::register()?;
    // Before anything is cleaned up or installed: another server's containers, rules and
    // bridges are not a crashed run's.
    let _claims = exclusive::claim(&cfg.paths.state_root, cfg.network.enabled)?;
    let paths = cfg.paths.clone();
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(paths))
        .await?
        .context("start the runtime")?;
    let runtime = Arc::new(runtime);
    let gc = {
        let rt = runtime.clone();
        tokio::task::spawn_blocking(move || {
            let left = rt.wait_for_orphans(std::time::Duration::from_secs(10));
            if left > 0 {
                tracing::warn!("{left} containers of a previous run are still being torn down");
            }
            rt.gc()
        })
        .await?
    };
    for id in &gc.removed {
        tracing::info!(container = %id, "removed what a previous run left");
    }
    {
        let rt = runtime.clone();
        for image in tokio::task::spawn_blocking(move || crate::session::gc_images(&rt)).await? {
            tracing::info!(%image, "removed an image a session of a previous run built");
        }
    }
    let admin_file = cfg.paths.state_root.join("admin-token");
    let admin_token = match cfg.admin_token.clone() {
        Some(t) => t,
        None => {
            let t = crate::workshop::random_hex(16);
            write_secret(&admin_file, &t)?;
            t
        }
    };
    let networks = Arc::new(crate::network::Networks::new(cfg.network.clone()));
    {
        let networks = networks.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let removed = networks.gc();
            networks.start().map(|()| removed)
        })
        .await?
        .context("install the firewall rules for session networks (or run with --no-network)")?;
        for bridge in removed {
            tracing::info!(%bridge, "removed a bridge a previous run left");
        }
    }
    let pool = (!cfg.pool.images.is_empty()).then(|| {
        crate::pool::Pool::new(runtime.clone(), &cfg.pool, &cfg.limits, cfg.network.enabled)
    });
    let state = AppState {
        pool: pool.clone(),
        runtime,
        limits: cfg.limits.clone(),
        shutdown: CancellationToken::new(),
        sessions: TaskTracker::new(),
        registry: Arc::new(Registry::default()),
        networks,
        per_ip: Arc::new(admission::PerIp::default()),
        lessons: Arc::new(cfg.lessons.clone()),
        workshops: Arc::new(crate::workshop::Workshops::new(
            admin_token.clone(),
            cfg.admission.token.clone(),
            cfg.admission.node.clone(),
        )),
        admission: Arc::new(cfg.admission.clone()),
        metrics: Arc::default(),
        containers: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // The first line on stdout is the URL (tests and scripts read it).
    println!("isolab: serving on http://{addr}/");
    // On stderr: scripts read only the first line of stdout, and may close it.
    match &cfg.admin_token {
        Some(_) => eprintln!("isolab: trainers: http://{addr}/?trainer (with the admin token)"),
        None => eprintln!(
            "isolab: trainers: http://{addr}/?trainer&admin={admin_token} (the token is in {})",
            admin_file.display()
        ),
    }
    // Workshops a trainer never ended end with their attendees' lifetime.
    {
        let (workshops, shutdown) = (state.workshops.clone(), state.shutdown.clone());
        let max_age = std::time::Duration::from_secs(state.limits.max_lifetime_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        for id in workshops.end_older_than(max_age) {
                            tracing::info!(workshop = %id, "workshop ended: it reached the maximum lifetime");
                        }
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
        });
    }
    // Filled off the request path; emptied at shutdown (after the sessions, below).
    let filler = pool.map(|p| tokio::spawn(p.run(state.shutdown.clone())));
    let app = router(state.clone(), cfg.dist.clone());
    let shutdown = state.shutdown.clone();
    // Keystrokes and short replies must not wait for Nagle's algorithm (a 40 ms stall each time
    // two small writes meet the client's delayed ACK).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        stop.recv().await;
        tracing::info!("shutting down: removing every container");
        shutdown.cancel();
    })
    .await
    .context("serve")?;
    // Upgraded WebSocket connections are not axum's to wait for: wait for the sessions.
    state.sessions.close();
    state.sessions.wait().await;
    if let Some(filler) = filler {
        let _ = filler.await;
    }
    state.workshops.end_all();
    if cfg.admin_token.is_none() {
        let _ = std::fs::remove_file(&admin_file);
    }
    let networks = state.networks.clone();
    tokio::task::spawn_blocking(move || networks.finish()).await?;
    Ok(())
}

/// A file only root may read.
fn write_secret(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// SIGTERM and SIGINT (Ctrl-C), caught from registration on.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn register() -> Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("catch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("catch SIGINT")?,
        })
    }

    /// The first of the two.
    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
