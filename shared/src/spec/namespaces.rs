//! Namespace choices: which of the eight Linux namespaces a container gets
//! privately, shares with the host, or joins from another container.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{is_valid_name, SpecError};

/// The kinds of Linux namespace, named as in `/proc/<pid>/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    /// Mount points.
    Mnt,
    /// Hostname and NIS domain name.
    Uts,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Process ids.
    Pid,
    /// Network devices, addresses, ports.
    Net,
    /// The cgroup root.
    Cgroup,
    /// User and group ids, capabilities.
    User,
    /// Boot and monotonic clocks.
    Time,
}

impl NsKind {
    /// Every kind, in the order used by [`Namespaces`].
    pub const ALL: [NsKind; 8] = [
        NsKind::Mnt,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Pid,
        NsKind::Net,
        NsKind::Cgroup,
        NsKind::User,
        NsKind::Time,
    ];

    /// The file name under `/proc/<pid>/ns/` (also the field name in the spec).
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::Mnt => "mnt",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Cgroup => "cgroup",
            NsKind::User => "user",
            NsKind::Time => "time",
        }
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

impl FromStr for NsKind {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        NsKind::ALL
            .into_iter()
            .find(|k| k.proc_name() == s)
            .ok_or_else(|| {
                SpecError::new(
                    "invalid_namespace",
                    "namespaces",
                    format!("unknown namespace {s:?}; expected one of mnt, uts, ipc, pid, net, cgroup, user, time"),
                )
            })
    }
}

/// What a container does with one namespace kind.
///
/// Written as `"private"`, `"host"` or `"container:NAME"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NsMode {
    /// A new namespace of its own.
    Private,
    /// Stay in the host's namespace (no isolation).
    Host,
    /// Join the namespace of the named running container.
    Container(String),
}

impl FromStr for NsMode {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "private" => Ok(NsMode::Private),
            "host" => Ok(NsMode::Host),
            _ => match s.strip_prefix("container:") {
                Some(name) if is_valid_name(name) => Ok(NsMode::Container(name.to_owned())),
                Some(name) => Err(SpecError::new(
                    "invalid_namespace",
                    "namespaces",
                    format!("{name:?} is not a valid container name in {s:?}"),
                )),
                None => Err(SpecError::new(
                    "invalid_namespace",
                    "namespaces",
                    format!("unknown namespace mode {s:?}; expected \"private\", \"host\" or \"container:NAME\""),
                )),
            },
        }
    }
}

impl fmt::Display for NsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsMode::Private => f.write_str("private"),
            NsMode::Host => f.write_str("host"),
            NsMode::Container(name) => write!(f, "container:{name}"),
        }
    }
}

impl Serialize for NsMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NsMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn private() -> NsMode {
    NsMode::Private
}

/// The namespace choice for each kind.
///
/// Defaults: everything private, `user` included: root in a container is an unprivileged
/// host uid (a range of 65536 ids per container). A container that joins another's namespace
/// (`container:NAME`) with `user` left private joins that container's user namespace too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// Mount namespace.
    #[serde(default = "private")]
    pub mnt: NsMode,
    /// UTS (hostname) namespace.
    #[serde(default = "private")]
    pub uts: NsMode,
    /// IPC namespace.
    #[serde(default = "private")]
    pub ipc: NsMode,
    /// PID namespace.
    #[serde(default = "private")]
    pub pid: NsMode,
    /// Network namespace.
    #[serde(default = "private")]
    pub net: NsMode,
    /// Cgroup namespace.
    #[serde(default = "private")]
    pub cgroup: NsMode,
    /// User namespace.
    #[serde(default = "private")]
    pub user: NsMode,
    /// Time namespace.
    #[serde(default = "private")]
    pub time: NsMode,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            mnt: private(),
            uts: private(),
            ipc: private(),
            pid: private(),
            net: private(),
            cgroup: private(),
            user: private(),
            time: private(),
        }
    }
}

impl Namespaces {
    /// The choice for one kind.
    pub fn get(&self, kind: NsKind) -> &NsMode {
        match kind {
            NsKind::Mnt => &self.mnt,
            NsKind::Uts => &self.uts,
            NsKind::Ipc => &self.ipc,
            NsKind::Pid => &self.pid,
            NsKind::Net => &self.net,
            NsKind::Cgroup => &self.cgroup,
            NsKind::User => &self.user,
            NsKind::Time => &self.time,
        }
    }

    /// Mutable access to the choice for one kind (for CLI flags like `--net host`).
    pub fn get_mut(&mut self, kind: NsKind) -> &mut NsMode {
        match kind {
            NsKind::Mnt => &mut self.mnt,
            NsKind::Uts => &mut self.uts,
            NsKind::Ipc => &mut self.ipc,
            NsKind::Pid => &mut self.pid,
            NsKind::Net => &mut self.net,
            NsKind::Cgroup => &mut self.cgroup,
            NsKind::User => &mut self.user,
            NsKind::Time => &mut self.time,
        }
    }

    /// Every kind with its choice, in [`NsKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (NsKind, &NsMode)> + '_ {
        NsKind::ALL.into_iter().map(move |k| (k, self.get(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_display() {
        assert_eq!("private".parse::<NsMode>().unwrap(), NsMode::Private);
        assert_eq!("host".parse::<NsMode>().unwrap(), NsMode::Host);
        let c: NsMode = "container:web-1".parse().unwrap();
        assert_eq!(c, NsMode::Container("web-1".into()));
        assert_eq!(c.to_string(), "container:web-1");
        for bad in [
            "",
            "Private",
            "shared",
            "container:",
            "container:-x",
            "container:a b",
        ] {
            let err = bad.parse::<NsMode>().unwrap_err();
            assert_eq!(err.code(), "invalid_namespace", "{bad:?}");
        }
    }

    #[test]
    fn modes_round_trip_through_serde() {
        for mode in [
            NsMode::Private,
            NsMode::Host,
            NsMode::Container("db".into()),
        ] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{mode}\""));
            assert_eq!(serde_json::from_str::<NsMode>(&json).unwrap(), mode);
        }
        assert!(serde_json::from_str::<NsMode>("\"bogus\"").is_err());
    }

    #[test]
    fn defaults_are_all_private() {
        let ns = Namespaces::default();
        for (kind, mode) in ns.iter() {
            assert_eq!(mode, &NsMode::Private, "{kind}");
        }
        let parsed: Namespaces = serde_json::from_str(r#"{"net":"host"}"#).unwrap();
        assert_eq!(parsed.net, NsMode::Host);
        assert_eq!(parsed.user, NsMode::Private);
        assert_eq!(parsed.pid, NsMode::Private);
        assert!(serde_json::from_str::<Namespaces>(r#"{"network":"host"}"#).is_err());
    }

    #[test]
    fn kinds_have_proc_names_and_get_matches_fields() {
        let names: Vec<_> = NsKind::ALL.iter().map(|k| k.proc_name()).collect();
        assert_eq!(
            names,
            ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user", "time"]
        );
        let mut ns = Namespaces::default();
        for kind in NsKind::ALL {
            assert_eq!(kind.proc_name().parse::<NsKind>().unwrap(), kind);
            *ns.get_mut(kind) = NsMode::Container(kind.proc_name().into());
            assert_eq!(ns.get(kind), &NsMode::Container(kind.proc_name().into()));
        }
        assert_eq!(ns.time, NsMode::Container("time".into()));
        assert!("network".parse::<NsKind>().is_err());
    }
}
