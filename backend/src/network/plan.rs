//! A session's network: its own bridge and /24 subnet, as a CNI configuration list (`bridge`
//! with `host-local` IPAM, then `portmap`), and the `/etc/hosts` its containers share.
//!
//! Isolation comes from routing: a container gets only its subnet's route (and a default route
//! through the bridge only when the server allows egress), so another session's subnet, the
//! host's other networks and the internet are unreachable; the bridge's address (the host's
//! side) is there for published ports. The host's firewall ([`super::firewall`]) holds the same
//! line when a container changes its routes, and does the NAT when egress is allowed: one rule
//! for the whole [`POOL`], so no container leaves a rule behind (the bridge plugin's `ipMasq`
//! would add a chain per container, which its DEL removes only while the container's network
//! namespace still exists).

use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{json, Value};

use crate::runtime::cni::CNI_VERSION;

/// Prefix of isolab's bridges (`isl-` and 8 characters of the session tag: 12 of the 15 a Linux
/// interface name may have).
pub const BRIDGE_PREFIX: &str = "isl-";
/// Prefix of isolab's CNI network names.
pub const NETWORK_PREFIX: &str = "isolab-";
/// Where session subnets come from: 10.88.0.0/14, from 10.88.0.0/24 to 10.91.255.0/24.
pub const POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 14);
/// The first session subnet.
const FIRST: u32 = u32::from_be_bytes(POOL.0.octets());
/// How many /24 subnets there are for sessions: all of [`POOL`].
pub const SUBNETS: u32 = 1 << (24 - POOL.1);

/// One session's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    /// The CNI network name (`isolab-<tag>`).
    pub name: String,
    pub bridge: String,
    /// Which /24 (0 .. SUBNETS).
    pub index: u32,
    /// Containers may reach outside their subnet (a default route; the firewall's NAT).
    pub egress: bool,
}

impl NetworkPlan {
    pub fn new(tag: &str, index: u32, egress: bool) -> NetworkPlan {
        let short: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        NetworkPlan {
            name: format!("{NETWORK_PREFIX}{tag}"),
            bridge: format!("{BRIDGE_PREFIX}{short}"),
            index,
            egress,
        }
    }

    /// The subnet's network address.
    pub fn subnet(&self) -> Ipv4Addr {
        Ipv4Addr::from(FIRST + (self.index << 8))
    }

    /// The bridge's (the host's) address in the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet()) + 1)
    }

    /// A site's own configuration list (`isolab serve --cni-config FILE`), with `{{name}}`,
    /// `{{bridge}}`, `{{subnet}}`, `{{gateway}}` and `{{ipam_dir}}` replaced by this network's.
    pub fn render(&self, template: &str, ipam_dir: &Path) -> Result<Value, String> {
        let text = template
            .replace("{{name}}", &self.name)
            .replace("{{bridge}}", &self.bridge)
            .replace("{{subnet}}", &format!("{}/24", self.subnet()))
            .replace("{{gateway}}", &self.gateway().to_string())
            .replace("{{ipam_dir}}", &ipam_dir.display().to_string());
        let value: Value =
            serde_json::from_str(&text).map_err(|e| format!("the CNI config template: {e}"))?;
        if !value["plugins"].is_array() {
            return Err("the CNI config template has no \"plugins\" list".into());
        }
        Ok(value)
    }

    /// The CNI configuration list; `ipam_dir` is where host-local keeps its leases.
    pub fn conflist(&self, ipam_dir: &Path, portmap: bool) -> Value {
        let routes: Vec<Value> = if self.egress {
            vec![json!({"dst": "0.0.0.0/0"})]
        } else {
            Vec::new()
        };
        let mut list = json!({
            "cniVersion": CNI_VERSION,
            "name": self.name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": format!("{}/24", self.subnet()), "gateway": self.gateway().to_string()}]],
                        "routes": routes,
                        "dataDir": ipam_dir,
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        });
        if !portmap {
            if let Some(plugins) = list["plugins"].as_array_mut() {
                plugins.retain(|p| p["type"] != "portmap");
            }
        }
        list
    }
}

/// A `/etc/hosts` for a session's containers: localhost, then each `(ip, name, hostname)`.
pub fn hosts_file(entries: &[(String, String, String)]) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (ip, name, hostname) in entries {
        if name == hostname || hostname.is_empty() {
            out.push_str(&format!("{ip}\t{name}\n"));
        } else {
            out.push_str(&format!("{ip}\t{name} {hostname}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_name_a_bridge_and_a_subnet() {
        let p = NetworkPlan::new("3f2a9c01b7de55aa", 0, false);
        assert_eq!(p.name, "isolab-3f2a9c01b7de55aa");
        assert_eq!(p.bridge, "isl-3f2a9c01");
        assert!(p.bridge.len() <= 15);
        assert_eq!(
            (p.subnet(), p.gateway()),
            ("10.88.0.0".parse().unwrap(), "10.88.0.1".parse().unwrap())
        );
        let last = NetworkPlan::new("x", SUBNETS - 1, false);
        assert_eq!(last.subnet(), "10.91.255.0".parse::<Ipv4Addr>().unwrap());
        assert_eq!(SUBNETS, 1024);
    }

    #[test]
    fn egress_adds_a_default_route_and_leaves_nat_to_the_firewall() {
        let closed = NetworkPlan::new("a", 3, false).conflist(Path::new("/ipam"), true);
        let bridge = &closed["plugins"][0];
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["routes"], json!([]));
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.88.3.0/24");
        let open = NetworkPlan::new("a", 3, true).conflist(Path::new("/ipam"), true);
        assert_eq!(
            open["plugins"][0]["ipam"]["routes"],
            json!([{"dst": "0.0.0.0/0"}])
        );
        // The bridge plugin's per-container NAT chain would outlive a container whose network
        // namespace is gone by DEL time; the firewall's one rule covers every session.
        assert_eq!(open["plugins"][0]["ipMasq"], false);
        assert_eq!(open["plugins"][1]["type"], "portmap");
        // A container that publishes nothing: no portmap to run.
        let quiet = NetworkPlan::new("a", 3, true).conflist(Path::new("/ipam"), false);
        assert_eq!(quiet["plugins"].as_array().unwrap().len(), 1);
        assert_eq!(quiet["plugins"][0]["type"], "bridge");
    }

    #[test]
    fn a_site_template_is_filled_in() {
        let p = NetworkPlan::new("abc", 1, false);
        let t = r#"{"cniVersion": "1.0.0", "name": "{{name}}", "plugins": [{"type": "bridge",
            "bridge": "{{bridge}}", "ipam": {"type": "host-local", "subnet": "{{subnet}}",
            "gateway": "{{gateway}}", "dataDir": "{{ipam_dir}}"}}]}"#;
        let v = p.render(t, Path::new("/ipam")).unwrap();
        assert_eq!(v["name"], "isolab-abc");
        assert_eq!(v["plugins"][0]["ipam"]["subnet"], "10.88.1.0/24");
        assert_eq!(v["plugins"][0]["ipam"]["dataDir"], "/ipam");
        assert!(p
            .render("{}", Path::new("/"))
            .unwrap_err()
            .contains("plugins"));
        assert!(p.render("not json", Path::new("/")).is_err());
    }

    #[test]
    fn hosts_files_list_every_container() {
        let text = hosts_file(&[
            ("10.88.0.2".into(), "alpha".into(), "alpha".into()),
            ("10.88.0.3".into(), "beta".into(), "web".into()),
        ]);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.88.0.2\talpha\n") && text.contains("10.88.0.3\tbeta web\n"));
    }
}
