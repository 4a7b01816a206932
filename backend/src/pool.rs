//! The warm pool: containers made before anyone asks for them, so that a click gets a prompt
//! in milliseconds. Off unless `serve --pool IMAGE=N`.
//!
//! A pooled container is made like any other (namespaces, cgroup, overlay root, pty, its
//! `/etc/hosts` when sessions have networks) and stops where `create` stops: its first process
//! waits for `Start`. A request takes one only when it asks for exactly what the pool made but
//! for what can still change before `Start` without a trace: its name, its limits (written to
//! its cgroup) and its hostname (set by the container's own first process, in its UTS
//! namespace, before it runs the command). Its network is attached as a fresh container's is,
//! before it starts. Anything else (a command, namespaces shared with another container,
//! volumes, ports, a user, another runtime...) makes a fresh container: the pool is not used.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use isolab_shared::protocol::Limits;
use isolab_shared::spec::ContainerSpec;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::runtime::container::{Container, CreateOptions, Runtime, StdioSpec};

/// How many ready containers to keep, per image (`--pool IMAGE=N`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolConfig {
    pub images: Vec<(String, usize)>,
}

impl PoolConfig {
    /// `IMAGE=N`, as the flag takes it.
    pub fn parse_entry(text: &str) -> Result<(String, usize), String> {
        let (image, n) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("--pool {text:?}: write IMAGE=N, e.g. busybox=8"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("--pool {text:?}: {n:?} is not a number of containers"))?;
        if image.is_empty() || n > 1000 {
            return Err(format!(
                "--pool {text:?}: an image and at most 1000 containers"
            ));
        }
        Ok((image.to_string(), n))
    }
}

/// The server's pool.
pub struct Pool {
    runtime: Arc<Runtime>,
    wanted: Vec<(String, usize)>,
    limits: Limits,
    /// Pooled containers get an `/etc/hosts` of their own (sessions have networks).
    hosts_file: bool,
    ready: Mutex<HashMap<String, VecDeque<Container>>>,
    /// Wakes the filler when a container was taken.
    taken: Notify,
}

impl Pool {
    pub fn new(
        runtime: Arc<Runtime>,
        config: &PoolConfig,
        limits: &Limits,
        hosts_file: bool,
    ) -> Arc<Pool> {
        Arc::new(Pool {
            runtime,
            wanted: config.images.clone(),
            limits: limits.clone(),
            hosts_file,
            ready: Mutex::new(HashMap::new()),
            taken: Notify::new(),
        })
    }

    /// What the pool makes for `image`: an interactive shell (the image's default command)
    /// with a terminal and the server's default limits, every namespace its own.
    pub fn template(&self, image: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(image, Vec::new());
        spec.tty = true;
        apply_defaults(&mut spec, &self.limits);
        spec.hostname = Some("pooled".into());
        spec
    }

    /// Whether `spec` (with the session's defaults applied) asks for what the pool makes. A
    /// command equal to the image's own (the page sends `sh` for busybox) is that command.
    pub fn fits(&self, spec: &ContainerSpec) -> bool {
        if !self.serves(&spec.image) {
            return false;
        }
        let image_cmd = match (spec.cmd.is_empty(), spec.entrypoint.is_none()) {
            (false, true) => self
                .runtime
                .images
                .open(&spec.image)
                .ok()
                .and_then(|i| i.settings.entrypoint.is_none().then_some(i.settings.cmd))
                .flatten(),
            _ => None,
        };
        fits(
            &self.template(&spec.image),
            &with_image_cmd(spec, image_cmd.as_deref()),
        )
    }

    /// Whether the pool keeps containers of `image`.
    pub fn serves(&self, image: &str) -> bool {
        self.wanted.iter().any(|(i, n)| i == image && *n > 0)
    }

    /// A ready container for `spec`, if it fits and one is there.
    pub fn take(&self, spec: &ContainerSpec) -> Option<Container> {
        if !self.fits(spec) {
            return None;
        }
        let taken = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&spec.image)?
            .pop_front();
        if taken.is_some() {
            self.taken.notify_one();
        }
        taken
    }

    /// Ready containers, all images together.
    pub fn ready(&self) -> usize {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready.values().map(VecDeque::len).sum()
    }

    fn missing(&self) -> Option<String> {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        self.wanted
            .iter()
            .find(|(image, n)| ready.get(image).map_or(0, VecDeque::len) < *n)
            .map(|(image, _)| image.clone())
    }

    /// Keep the pool full until `shutdown`, one container at a time (off the request path:
    /// a create that takes a pooled container never waits for this); then remove what is left.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            while let Some(image) = self.missing() {
                if shutdown.is_cancelled() {
                    break;
                }
                let pool = self.clone();
                let made = tokio::task::spawn_blocking(move || {
                    let mut spec = pool.template(&image);
                    spec.name = Some(format!("pool-{}", &crate::runtime::new_id()[..12]));
                    let opts = CreateOptions {
                        hosts_file: pool.hosts_file,
                        ..CreateOptions::default()
                    };
                    (image, pool.runtime.create(&spec, &opts, StdioSpec::Tty))
                })
                .await;
                match made {
                    Ok((image, Ok(c))) => {
                        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                        ready.entry(image).or_default().push_back(c);
                    }
                    Ok((image, Err(e))) => {
                        tracing::warn!(%image, "warm pool: {e}; trying again in 10 s");
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                    Err(e) => tracing::warn!("warm pool: {e}"),
                }
            }
            tokio::select! {
                _ = self.taken.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.drain().await;
    }

    /// Remove every pooled container.
    async fn drain(&self) {
        let left: Vec<Container> = {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            ready.drain().flat_map(|(_, q)| q).collect()
        };
        let rt = self.runtime.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for c in left {
                let id = c.id.clone();
                drop(c);
                if let Err(e) = rt.remove(&id) {
                    tracing::warn!(container = %id, "warm pool: remove: {e}");
                }
            }
        })
        .await;
    }
}

/// `spec` with its command left to the image when it is the image's own (`image_cmd`: the
/// image's CMD, when it has no ENTRYPOINT): the same process either way.
fn with_image_cmd(spec: &ContainerSpec, image_cmd: Option<&[String]>) -> ContainerSpec {
    let mut spec = spec.clone();
    if image_cmd.is_some_and(|c| c == spec.cmd.as_slice()) {
        spec.cmd.clear();
    }
    spec
}

/// Whether `spec` asks for `template` up to what can still change before `Start`: the name,
/// the hostname and the limits.
pub fn fits(template: &ContainerSpec, spec: &ContainerSpec) -> bool {
    let mut asked = spec.clone();
    asked.name = template.name.clone();
    asked.hostname = template.hostname.clone();
    asked.memory = template.memory;
    asked.cpus = template.cpus;
    asked.pids_limit = template.pids_limit;
    asked == *template
}

/// The server's defaults for what a spec leaves out: memory, CPUs, pids, the writable layer.
pub fn apply_defaults(spec: &mut ContainerSpec, limits: &Limits) {
    spec.memory = spec
        .memory
        .or(Some(isolab_shared::spec::MemorySize(limits.default_memory)));
    spec.cpus = spec.cpus.or(Some(limits.default_cpus));
    spec.pids_limit = spec.pids_limit.or(Some(limits.default_pids));
    if limits.default_storage > 0 {
        spec.storage_size = spec.storage_size.or(Some(isolab_shared::spec::MemorySize(
            limits.default_storage,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> ContainerSpec {
        let mut t = ContainerSpec::new("busybox", Vec::new());
        t.tty = true;
        apply_defaults(&mut t, &Limits::default());
        t.hostname = Some("pooled".into());
        t
    }

    #[test]
    fn only_name_hostname_and_limits_may_differ() {
        let t = template();
        let mut asked = ContainerSpec::new("busybox", Vec::new());
        asked.tty = true;
        asked.name = Some("tag-alpha".into());
        asked.hostname = Some("alpha".into());
        asked.memory = Some(isolab_shared::spec::MemorySize(64 << 20));
        asked.cpus = Some(0.5);
        asked.pids_limit = Some(20);
        apply_defaults(&mut asked, &Limits::default());
        assert!(fits(&t, &asked));
        type Change = fn(&mut ContainerSpec);
        let changes: [(&str, Change); 7] = [
            ("a command", |s| s.cmd = vec!["top".into()]),
            ("no terminal", |s| s.tty = false),
            ("env", |s| s.env = vec!["A=1".into()]),
            ("another image", |s| s.image = "debian".into()),
            ("a published port", |s| s.publish = vec!["8080:80".into()]),
            ("--init", |s| s.init = true),
            ("a shared PID namespace", |s| {
                *s.namespaces.get_mut(isolab_shared::spec::NsKind::Pid) =
                    isolab_shared::spec::NsMode::Container("x".into())
            }),
        ];
        for (what, change) in changes {
            let mut other = asked.clone();
            change(&mut other);
            assert!(!fits(&t, &other), "{what} must not take a pooled container");
        }
        // The page asks for `sh` by name: busybox's own CMD, so the same process.
        let mut sh = asked.clone();
        sh.cmd = vec!["sh".into()];
        let image_cmd = ["sh".to_string()];
        assert!(fits(&t, &with_image_cmd(&sh, Some(&image_cmd))));
        assert!(
            !fits(&t, &with_image_cmd(&sh, None)),
            "an image without CMD"
        );
        let other_cmd = ["bash".to_string()];
        assert!(!fits(&t, &with_image_cmd(&sh, Some(&other_cmd))));
    }

    #[test]
    fn entries_parse() {
        assert_eq!(
            PoolConfig::parse_entry("busybox=8"),
            Ok(("busybox".into(), 8))
        );
        assert_eq!(
            PoolConfig::parse_entry("reg/img:1=2"),
            Ok(("reg/img:1".into(), 2))
        );
        for bad in ["busybox", "=3", "busybox=x", "busybox=100000"] {
            assert!(PoolConfig::parse_entry(bad).is_err(), "{bad}");
        }
    }
}
