//! isolab as a CNI runtime (CNI spec 1.0, as containerd and CRI-O are): a network
//! configuration list's plugins are executed in order for ADD and CHECK and in reverse for DEL,
//! each with its config on stdin (`name`, `cniVersion`, the previous plugin's result as
//! `prevResult`, and the `runtimeConfig` its capabilities ask for) and the `CNI_*` variables;
//! a plugin answers a result or an error as JSON on stdout.
//!
//! A container's attachment is saved in its state folder (`network.json`) before ADD runs, so
//! every removal path (the monitor's teardown, `isolab rm`, `gc` after a crash) can DEL it:
//! that releases the IPAM lease and the port mappings. DEL is sent without a namespace path:
//! the container's namespace dies with its processes (and its veth end with it), and a
//! `/proc/PID` path could by then name another process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The CNI version isolab speaks.
pub const CNI_VERSION: &str = "1.0.0";
/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";
/// The container-side interface.
pub const IFNAME: &str = "eth0";
/// The attachment record in a container's state folder.
pub const RECORD: &str = "network.json";

/// Why a CNI call failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("CNI plugin {plugin:?} not found in {dirs}")]
    NoPlugin { plugin: String, dirs: String },
    #[error("CNI {command} {plugin}: {msg}{details} (code {code})")]
    Plugin {
        command: &'static str,
        plugin: String,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("CNI {command} {plugin}: {0}", .detail)]
    Exec {
        command: &'static str,
        plugin: String,
        detail: String,
    },
    #[error("network config: {0}")]
    Config(String),
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One container's attachment to a network: what ADD was given and answered, kept for DEL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    /// The configuration list (`{cniVersion, name, plugins: [...]}`).
    pub conflist: Value,
    pub container_id: String,
    pub ifname: String,
    /// Capability arguments (`portMappings`, …).
    #[serde(default)]
    pub runtime_config: Value,
    pub plugin_dirs: Vec<PathBuf>,
    /// ADD's result, once it succeeded.
    #[serde(default)]
    pub result: Option<Value>,
}

impl Attachment {
    pub fn load(dir: &Path) -> Option<Attachment> {
        let text = std::fs::read_to_string(dir.join(RECORD)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<(), CniError> {
        let path = dir.join(RECORD);
        let tmp = dir.join(format!("{RECORD}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self).expect("json"))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| CniError::Io {
                step: "writing",
                path,
                source,
            })
    }

    /// ADD on the network namespace at `netns`; the result is kept in `self`.
    pub fn add(&mut self, netns: &Path) -> Result<Value, CniError> {
        let plugins = self.plugins()?;
        let mut prev: Option<Value> = None;
        for p in &plugins {
            let result = self.exec("ADD", p, Some(netns), prev.as_ref())?;
            prev = Some(result);
        }
        let result = prev.unwrap_or_else(|| json!({"cniVersion": CNI_VERSION}));
        self.result = Some(result.clone());
        Ok(result)
    }

    /// CHECK that the attachment is as ADD left it.
    pub fn check(&self, netns: &Path) -> Result<(), CniError> {
        for p in &self.plugins()? {
            self.exec("CHECK", p, Some(netns), self.result.as_ref())?;
        }
        Ok(())
    }

    /// DEL, plugins in reverse order; every plugin is asked even if one fails (the first error
    /// is returned).
    pub fn del(&self) -> Result<(), CniError> {
        let mut first = None;
        for p in self.plugins()?.iter().rev() {
            if let Err(e) = self.exec("DEL", p, None, self.result.as_ref()) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn plugins(&self) -> Result<Vec<Value>, CniError> {
        self.conflist["plugins"]
            .as_array()
            .cloned()
            .ok_or_else(|| CniError::Config("the configuration list has no \"plugins\"".into()))
    }

    /// One plugin call.
    fn exec(
        &self,
        command: &'static str,
        plugin: &Value,
        netns: Option<&Path>,
        prev: Option<&Value>,
    ) -> Result<Value, CniError> {
        let typ = plugin["type"]
            .as_str()
            .ok_or_else(|| CniError::Config("a plugin has no \"type\"".into()))?
            .to_string();
        let exe = self
            .plugin_dirs
            .iter()
            .map(|d| d.join(&typ))
            .find(|p| p.is_file())
            .ok_or_else(|| CniError::NoPlugin {
                plugin: typ.clone(),
                dirs: self
                    .plugin_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
            })?;
        let config = self.plugin_config(plugin, prev);
        let path = std::env::join_paths(&self.plugin_dirs)
            .map_err(|e| CniError::Config(format!("plugin dirs: {e}")))?;
        let mut child = Command::new(&exe)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env(
                "CNI_NETNS",
                netns.map(|p| p.as_os_str()).unwrap_or_default(),
            )
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CniError::Exec {
                command,
                plugin: typ.clone(),
                detail: e.to_string(),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&serde_json::to_vec(&config).expect("json"));
        }
        let out = child.wait_with_output().map_err(|e| CniError::Exec {
            command,
            plugin: typ.clone(),
            detail: e.to_string(),
        })?;
        let answer: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        if !out.status.success() {
            let a = answer.unwrap_or(Value::Null);
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(CniError::Plugin {
                command,
                plugin: typ,
                code: a["code"].as_u64().unwrap_or(0),
                msg: a["msg"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{} {stderr}", out.status)),
                details: a["details"]
                    .as_str()
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
            });
        }
        Ok(answer.unwrap_or(Value::Null))
    }

    /// A plugin's stdin: its object, with the list's name and version, the previous result,
    /// and the runtime config its capabilities ask for.
    fn plugin_config(&self, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut config = plugin.clone();
        config["cniVersion"] = self.conflist["cniVersion"].clone();
        config["name"] = self.conflist["name"].clone();
        if let Some(prev) = prev.filter(|p| !p.is_null()) {
            config["prevResult"] = prev.clone();
        }
        if let Some(caps) = plugin["capabilities"].as_object() {
            let mut rc = serde_json::Map::new();
            for (cap, on) in caps {
                if on.as_bool() == Some(true) {
                    if let Some(v) = self.runtime_config.get(cap) {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
            if !rc.is_empty() {
                config["runtimeConfig"] = Value::Object(rc);
            }
        }
        config
    }
}

/// The container's IPv4 address in a CNI result (`ips[0].address` without its prefix).
pub fn result_ipv4(result: &Value) -> Option<String> {
    result["ips"]
        .as_array()?
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .find(|a| !a.contains(':'))
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            conflist: json!({"cniVersion": "1.0.0", "name": "net1", "plugins": [
                {"type": "bridge", "bridge": "br0"},
                {"type": "portmap", "capabilities": {"portMappings": true, "other": false}}
            ]}),
            container_id: "abc".into(),
            ifname: "eth0".into(),
            runtime_config: json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "other": 1}),
            plugin_dirs: vec![PathBuf::from("/nonexistent")],
            result: None,
        }
    }

    #[test]
    fn a_plugin_gets_the_list_name_version_prev_result_and_its_capabilities() {
        let a = attachment();
        let plugins = a.plugins().unwrap();
        let first = a.plugin_config(&plugins[0], None);
        assert_eq!(
            first,
            json!({"type": "bridge", "bridge": "br0", "cniVersion": "1.0.0", "name": "net1"})
        );
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.88.0.2/24"}]});
        let second = a.plugin_config(&plugins[1], Some(&prev));
        assert_eq!(second["prevResult"], prev);
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}),
            "only the capabilities it asks for"
        );
    }

    #[test]
    fn a_missing_plugin_is_named() {
        let err = attachment().del().unwrap_err().to_string();
        assert!(
            err.contains("\"portmap\" not found in /nonexistent"),
            "{err}"
        );
    }

    #[test]
    fn addresses_come_from_the_result() {
        let r = json!({"ips": [{"address": "fd00::2/64"}, {"address": "10.88.0.2/24", "gateway": "10.88.0.1"}]});
        assert_eq!(result_ipv4(&r).as_deref(), Some("10.88.0.2"));
        assert_eq!(result_ipv4(&json!({})), None);
    }
}
