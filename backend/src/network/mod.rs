//! Container networking: isolab is a CNI runtime (`runtime::cni` calls the plugins on a
//! container's network namespace), with one bridge network per session ([`plan`]); and the few
//! netlink requests it makes itself ([`netlink`]: removing a session's bridge, moving an
//! interface between containers).

pub mod firewall;
pub mod moving;
pub mod netlink;
pub mod plan;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use plan::{NetworkPlan, BRIDGE_PREFIX, NETWORK_PREFIX, SUBNETS};

/// How the server networks its sessions' containers.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Off: containers keep a private namespace with only `lo`.
    pub enabled: bool,
    /// Containers may reach beyond their session's subnet (default route, NAT).
    pub egress: bool,
    /// Where the CNI plugins are (`CNI_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Where host-local keeps its leases, one folder per network.
    pub ipam_dir: PathBuf,
    /// A site's own configuration list template, used instead of isolab's (see
    /// [`NetworkPlan::render`]).
    pub template: Option<String>,
}

impl NetworkConfig {
    /// The configuration list for a container of a session's network; `publishes`: whether
    /// the container publishes ports (without, isolab's own list leaves `portmap` out: it would
    /// do nothing, and its execution costs a quarter of the attach).
    pub fn conflist(
        &self,
        plan: &NetworkPlan,
        publishes: bool,
    ) -> Result<serde_json::Value, String> {
        match &self.template {
            Some(t) => plan.render(t, &self.ipam_dir),
            None => Ok(plan.conflist(&self.ipam_dir, publishes)),
        }
    }
}

/// The server's networks: which subnets are taken, which host ports are published.
#[derive(Debug)]
pub struct Networks {
    pub config: NetworkConfig,
    subnets: Mutex<BTreeSet<u32>>,
    ports: Mutex<BTreeSet<(u16, &'static str)>>,
}

impl Networks {
    pub fn new(config: NetworkConfig) -> Networks {
        Networks {
            config,
            subnets: Mutex::new(BTreeSet::new()),
            ports: Mutex::new(BTreeSet::new()),
        }
    }

    /// At start-up: the firewall rules that keep sessions apart and off the host
    /// ([`firewall`]), replacing any an earlier run left. Without them no session network is
    /// safe, so a failure stops the server (`--no-network` runs without).
    pub fn start(&self) -> Result<(), firewall::FirewallError> {
        if !self.config.enabled {
            return Ok(());
        }
        firewall::install(self.config.egress)
    }

    /// At shutdown, once every session is gone: the rules go too, unless a session network of
    /// another server on this host still needs them (an `isl-` bridge left).
    pub fn finish(&self) {
        let bridges = netlink::links()
            .unwrap_or_default()
            .into_iter()
            .any(|l| l.name.starts_with(BRIDGE_PREFIX));
        if self.config.enabled && !bridges {
            if let Err(e) = firewall::remove() {
                tracing::warn!("remove the firewall rules: {e}");
            }
        }
    }

    /// A network for a session: the lowest free subnet. The firewall is put back first if
    /// something removed it (another server on this host stopping).
    pub fn allocate(&self, tag: &str) -> Option<NetworkPlan> {
        if !firewall::installed().unwrap_or(false) {
            if let Err(e) = firewall::install(self.config.egress) {
                tracing::error!("the firewall rules could not be installed: {e}");
                return None;
            }
        }
        let mut taken = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        let index = (0..SUBNETS).find(|i| !taken.contains(i))?;
        taken.insert(index);
        Some(NetworkPlan::new(tag, index, self.config.egress))
    }

    /// A session ended (its containers removed, so their DELs ran): its bridge and lease
    /// folder go, and its subnet is free again.
    pub fn release(&self, plan: &NetworkPlan) {
        if let Err(e) = netlink::delete_link(&plan.bridge) {
            tracing::warn!(bridge = %plan.bridge, "remove the bridge: {e}");
        }
        let _ = std::fs::remove_dir_all(self.config.ipam_dir.join(&plan.name));
        let mut taken = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
        taken.remove(&plan.index);
    }

    /// Reserve host ports for publishing; the first one taken (by another container, or by a
    /// process of the host) is refused and nothing is reserved.
    pub fn reserve_ports(&self, ports: &[(u16, &'static str)]) -> Result<(), u16> {
        let mut taken = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        for &(port, proto) in ports {
            let busy_on_host =
                proto == "tcp" && std::net::TcpListener::bind(("127.0.0.1", port)).is_err();
            if taken.contains(&(port, proto)) || busy_on_host {
                return Err(port);
            }
        }
        taken.extend(ports.iter().copied());
        Ok(())
    }

    pub fn release_ports(&self, ports: &[(u16, &'static str)]) {
        let mut taken = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        for p in ports {
            taken.remove(p);
        }
    }

    /// At start-up, after the containers a previous run left were removed: its bridges and
    /// lease folders go too. Returns the bridges removed.
    pub fn gc(&self) -> Vec<String> {
        let mut removed = Vec::new();
        for link in netlink::links().unwrap_or_default() {
            if link.name.starts_with(BRIDGE_PREFIX) && link.kind.as_deref() == Some("bridge") {
                if let Ok(true) = netlink::delete_link(&link.name) {
                    removed.push(link.name);
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.config.ipam_dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(NETWORK_PREFIX) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        removed
    }
}
