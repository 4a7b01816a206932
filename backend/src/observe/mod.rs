//! The live view's observer: reads, from the host, what the kernel isolates for each watched
//! container and for the host itself, and says what changed since it last said.
//!
//! Everything is read, nothing is changed: namespace inodes, process status lines, mount
//! tables and id maps from `/proc`; usage from the cgroup files; hostname and interfaces
//! through `setns` in a short-lived thread (`inside.rs`). A session calls [`Observer::observe`]
//! on the blocking pool a few times a second while something is watched. The files read on
//! every pass stay open between passes (`kept.rs`).

mod inside;
mod kept;
mod links;
mod mounts;
mod procfs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use isolab_shared::protocol::view::{
    CgroupView, InterfaceView, KernelView, MountsView, NsView, ProcessView, ProcessesView,
    ViewTarget, ViewUpdate,
};
use isolab_shared::spec::NsKind;

use crate::runtime::cgroups::{CgroupManager, CgroupVersion, Sources, Stats};

/// The server's own network namespace inode (the host's, for the view).
pub fn host_net_inode() -> u64 {
    procfs::ns_inode("self", NsKind::Net).unwrap_or(0)
}

/// A process's network namespace inode (0 when it is gone).
pub fn net_inode(pid: i32) -> u64 {
    procfs::ns_inode(&pid.to_string(), NsKind::Net).unwrap_or(0)
}

/// A container the observer may look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The name the session's user knows it by.
    pub name: String,
    /// The runtime's id (its cgroup).
    pub id: String,
    /// Host pid of its first process: its namespaces are the container's.
    pub pid: i32,
    /// `--cpus`, when set.
    pub cpu_limit: Option<f64>,
}

/// The session's network, for the host column.
#[derive(Debug, Clone)]
pub struct SessionNetwork {
    pub plan: crate::network::plan::NetworkPlan,
    /// Each networked container: name, address, published ports.
    pub members: Vec<(String, String, Vec<String>)>,
}

/// State kept between observations: the last view sent per target (to send only changes) and
/// the last CPU sample per container (to turn usage into a rate).
#[derive(Debug, Default)]
pub struct Observer {
    sent: BTreeMap<ViewTarget, ViewUpdate>,
    cpu: HashMap<String, (u64, Instant)>,
    kernel: Option<String>,
    /// Passes so far: sections that rarely change are read every [`SLOW_EVERY`]th.
    passes: u64,
    /// Each subject's namespaces (by pid), re-read on slow passes: a process keeps its
    /// namespaces unless it calls `setns` or `unshare` itself.
    ns: HashMap<i32, [u64; 8]>,
    /// Files read on every pass, kept open: processes' status lines, command lines and id maps,
    /// cgroup files, UTS namespaces.
    kept: kept::Kept,
    /// Where each container's cgroup figures are (by id), found once.
    cgroup_sources: HashMap<String, Sources>,
    /// This pass's status and command line of each process read (the host's list and a
    /// container's may both show it).
    procs: HashMap<i32, Option<(procfs::Status, String)>>,
}

/// Mounts, id maps and interfaces change rarely (and cost the most to read): they are read on
/// every 2nd pass (every 500 ms at the session's 250 ms, the longest a change may take to
/// reach the page), and on a target's first.
const SLOW_EVERY: u64 = 2;

/// What one pass of reading found about a target; compared with what was sent.
struct Reading {
    update: ViewUpdate,
    /// veths whose peer is in another namespace, named once every namespace is read.
    pending: Vec<links::PendingPeer>,
}

impl Observer {
    pub fn new() -> Observer {
        Observer::default()
    }

    /// Look at every watched target and return, per target, the sections that changed since
    /// the last call (all of them for a target in `fresh`, or seen for the first time).
    /// `subjects` are all of the session's containers (sharing is computed among them).
    pub fn observe(
        &mut self,
        cgroups: &dyn CgroupManager,
        subjects: &[Subject],
        watched: &BTreeSet<ViewTarget>,
        fresh: &BTreeSet<ViewTarget>,
        network: Option<&SessionNetwork>,
    ) -> Vec<(ViewTarget, ViewUpdate)> {
        self.sent
            .retain(|t, _| watched.contains(t) && !fresh.contains(t));
        let live: BTreeSet<&str> = subjects.iter().map(|s| s.id.as_str()).collect();
        self.cpu.retain(|id, _| live.contains(id.as_str()));
        self.cgroup_sources
            .retain(|id, _| live.contains(id.as_str()));
        self.kept.next_pass();
        self.procs.clear();
        let mut out = Vec::new();
        let slow_pass = self.passes.is_multiple_of(SLOW_EVERY);
        self.passes += 1;
        if slow_pass {
            self.ns.clear();
        }
        let live_pids: BTreeSet<i32> = subjects.iter().map(|s| s.pid).collect();
        self.ns.retain(|pid, _| live_pids.contains(pid));
        for s in subjects {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.ns.entry(s.pid) {
                if let Ok(ns) = procfs::ns_inodes_kept(&mut self.kept, &s.pid.to_string()) {
                    slot.insert(ns);
                }
            }
        }
        // A target seen for the first time is read whole, like on a slow pass.
        let whole = slow_pass || watched.iter().any(|t| !self.sent.contains_key(t));
        let world = World::read(
            cgroups,
            subjects,
            watched,
            &self.ns,
            network,
            whole,
            &mut self.kept,
        );
        let mut inside = self.read_inside(&world, watched, slow_pass);
        let mut readings = Vec::new();
        for target in watched {
            let slow = slow_pass || !self.sent.contains_key(target);
            let inside = match target {
                ViewTarget::Container(name) => inside.remove(name),
                ViewTarget::Host => None,
            };
            if let Some(reading) = self.read(cgroups, &world, target, slow, inside) {
                readings.push((target.clone(), reading));
            }
        }
        self.resolve_peers(&mut readings, &world);
        for (target, reading) in readings {
            let target = &target;
            let last = self.sent.entry(target.clone()).or_default();
            let changed = changes(last, reading.update);
            if !changed.is_empty() {
                out.push((target.clone(), changed));
            }
        }
        out
    }

    /// What only the inside of each watched container can tell (its hostname when its UTS
    /// namespace is its own; its interfaces, on a slow pass, when its network namespace is),
    /// all asked from one thread; by container name.
    fn read_inside(
        &mut self,
        world: &World,
        watched: &BTreeSet<ViewTarget>,
        slow_pass: bool,
    ) -> HashMap<String, std::io::Result<inside::Inside>> {
        let mut wanted = Vec::new();
        for target in watched {
            let ViewTarget::Container(name) = target else {
                continue;
            };
            let Some(s) = world.subjects.iter().find(|s| &s.name == name) else {
                continue;
            };
            let Some(ns) = world.ns.get(&s.name) else {
                continue;
            };
            let slow = slow_pass || !self.sent.contains_key(target);
            let uts_private = ns[1] != world.host_ns[1];
            let net_private = slow && ns[4] != world.host_ns[4];
            if !uts_private && !net_private {
                continue;
            }
            // The namespace a file opened from /proc/PID/ns holds is the one of that moment:
            // the inode (re-read on slow passes) reopens it when the process has moved.
            let uts = uts_private.then(|| {
                let path = format!("/proc/{}/ns/uts", s.pid);
                self.kept.handle(std::path::Path::new(&path), ns[1])
            });
            wanted.push((s, uts, net_private));
        }
        let mut out = HashMap::new();
        let mut asks = Vec::new();
        let mut names = Vec::new();
        for (s, uts, net_private) in &wanted {
            let uts = match uts {
                Some(Ok(f)) => Some(f.as_ref()),
                Some(Err(e)) => {
                    out.insert(s.name.clone(), Err(std::io::Error::from(e.kind())));
                    continue;
                }
                None => None,
            };
            let net = if *net_private {
                match world.own_net(s) {
                    Some(f) => Some(f),
                    None => {
                        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
                        out.insert(s.name.clone(), Err(gone));
                        continue;
                    }
                }
            } else {
                None
            };
            let candidates = if *net_private {
                world.candidates(Some(s))
            } else {
                Vec::new()
            };
            asks.push(inside::Ask {
                uts,
                net,
                candidates: links::Candidates::new(candidates),
            });
            names.push(s.name.clone());
        }
        out.extend(names.into_iter().zip(inside::read_inside(asks)));
        out
    }

    /// A process's mount table, summarised. Read again when the kernel says the table changed,
    /// or the process is in another mount namespace (`mnt`) or has another root (which the
    /// table's paths are relative to); None when the process is gone.
    fn mounts(&mut self, pid: &str, mnt: u64) -> Option<MountsView> {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::MetadataExt;
        let root = std::fs::metadata(format!("/proc/{pid}/root")).ok()?;
        let mut tag = std::collections::hash_map::DefaultHasher::new();
        (mnt, root.dev(), root.ino()).hash(&mut tag);
        let path = format!("/proc/{pid}/mountinfo");
        let text = self
            .kept
            .read_mounts(std::path::Path::new(&path), tag.finish())
            .ok()?;
        Some(mounts::summarize(&kept::utf8(text).ok()?))
    }

    /// A process's status and command line, read once per pass.
    fn process(&mut self, pid: i32) -> Option<(procfs::Status, String)> {
        let kept = &mut self.kept;
        self.procs
            .entry(pid)
            .or_insert_with(|| procfs::status_and_cmdline(kept, pid).ok())
            .clone()
    }

    /// Name each pending veth peer: by index among the host's links, or among the other
    /// container's interfaces (read this pass, or last sent).
    fn resolve_peers(&self, readings: &mut [(ViewTarget, Reading)], world: &World) {
        let interfaces_of =
            |name: &str, readings: &[(ViewTarget, Reading)]| -> Vec<InterfaceView> {
                let target = ViewTarget::Container(name.to_string());
                readings
                    .iter()
                    .find(|(t, _)| *t == target)
                    .and_then(|(_, r)| r.update.interfaces.clone())
                    .or_else(|| self.sent.get(&target).and_then(|u| u.interfaces.clone()))
                    .unwrap_or_default()
            };
        let mut names = Vec::new();
        for (i, (_, r)) in readings.iter().enumerate() {
            for p in &r.pending {
                let name = match &p.container {
                    None => world
                        .host_links
                        .iter()
                        .find(|l| l.index == p.peer_index)
                        .map(|l| l.name.clone()),
                    Some(c) => interfaces_of(c, readings)
                        .iter()
                        .find(|x| x.index == p.peer_index)
                        .map(|x| x.name.clone()),
                };
                let label = match name {
                    Some(n) => format!("{n} {}", p.label),
                    None => format!("interface {} {}", p.peer_index, p.label),
                };
                names.push((i, p.interface.clone(), label));
            }
        }
        for (i, iface, label) in names {
            if let Some(list) = readings[i].1.update.interfaces.as_mut() {
                if let Some(x) = list.iter_mut().find(|x| x.name == iface) {
                    x.peer = Some(label);
                }
            }
        }
    }

    fn kernel(&mut self) -> KernelView {
        let release = self
            .kernel
            .get_or_insert_with(|| inside::kernel_release().unwrap_or_default())
            .clone();
        KernelView {
            release,
            shared_with_host: true,
        }
    }

    fn read(
        &mut self,
        cgroups: &dyn CgroupManager,
        world: &World,
        target: &ViewTarget,
        slow: bool,
        inside: Option<std::io::Result<inside::Inside>>,
    ) -> Option<Reading> {
        match target {
            ViewTarget::Host => Some(self.read_host(world, slow)),
            ViewTarget::Container(name) => {
                let subject = world.subjects.iter().find(|s| &s.name == name)?;
                self.read_container(cgroups, world, subject, slow, inside)
            }
        }
    }

    fn read_host(&mut self, world: &World, slow: bool) -> Reading {
        let mut update = ViewUpdate {
            namespaces: Some(world.namespaces(None, &world.host_ns)),
            kernel: Some(self.kernel()),
            uts: inside::uts_here().ok(),
            ..ViewUpdate::default()
        };
        let mut pending = Vec::new();
        let mut candidates = links::Candidates::new(if slow {
            world.candidates(None)
        } else {
            Vec::new()
        });
        if slow {
            if let Ok(mut list) = inside::interfaces_here() {
                // The host's links of this pass (listed once for all targets), unless that
                // failed.
                let links = Some(&world.host_links[..]).filter(|l| !l.is_empty());
                pending = links::kinds_and_peers(&mut list, &mut candidates, links);
                update.interfaces = Some(list);
            }
            update.mounts = self.mounts("self", world.host_ns[0]);
            update.id_maps = procfs::id_maps("self").ok();
        }
        if let Some(net) = world.network.filter(|_| slow) {
            let members: Vec<(String, String, Vec<String>, i32)> = net
                .members
                .iter()
                .filter_map(|(name, ip, ports)| {
                    let pid = world.subjects.iter().find(|s| &s.name == name)?.pid;
                    Some((name.clone(), ip.clone(), ports.clone(), pid))
                })
                .collect();
            update.network = Some(links::network_view(
                &net.plan,
                &members,
                &world.host_links,
                &mut candidates,
            ));
        }
        let mut list = Vec::new();
        for (pid, owner) in &world.owners {
            if let Some((st, cmd)) = self.process(*pid) {
                list.push(ProcessView {
                    pid: *pid,
                    pid_inside: *pid,
                    ppid: st.ppid,
                    uid_inside: st.uid,
                    uid_host: st.uid,
                    cmd,
                    container: Some(owner.clone()),
                });
            }
        }
        link_parents(&mut list);
        update.processes = Some(ProcessesView {
            list,
            host_total: Some(world.host_total),
        });
        Reading { update, pending }
    }

    fn read_container(
        &mut self,
        cgroups: &dyn CgroupManager,
        world: &World,
        s: &Subject,
        slow: bool,
        inside: Option<std::io::Result<inside::Inside>>,
    ) -> Option<Reading> {
        let ns = *world.ns.get(&s.name)?;
        let pid = s.pid.to_string();
        // The uid map is needed every pass (for the processes' users); it is one small read.
        let id_maps = procfs::id_maps_kept(&mut self.kept, s.pid, ns[6]).ok()?;
        let uts_private = ns[1] != world.host_ns[1];
        let net_private = slow && ns[4] != world.host_ns[4];
        let (uts, interfaces, pending) = if uts_private || net_private {
            inside?.ok()?
        } else {
            (None, None, Vec::new())
        };
        let uts = match uts {
            Some(u) => u,
            None => inside::uts_here().ok()?,
        };
        let interfaces = match (interfaces, slow) {
            (Some(i), _) => Some(i),
            (None, true) => Some(inside::interfaces_here().ok()?),
            (None, false) => None,
        };
        let mounts = if slow {
            Some(self.mounts(&pid, ns[0])?)
        } else {
            None
        };
        let processes = self.processes(world, s, &ns, &id_maps.uid)?;
        let cgroup = self.cgroup(cgroups, s);
        Some(Reading {
            update: ViewUpdate {
                namespaces: Some(world.namespaces(Some(&s.name), &ns)),
                processes: Some(processes),
                uts: Some(uts),
                interfaces,
                mounts,
                id_maps: slow.then_some(id_maps),
                cgroup,
                kernel: Some(self.kernel()),
                network: None,
            },
            pending,
        })
    }

    /// The processes the container's `ps` lists: those of its pid namespace, or, when it
    /// shares the host's, those of its cgroup.
    fn processes(
        &mut self,
        world: &World,
        s: &Subject,
        ns: &[u64; 8],
        uid_map: &[isolab_shared::protocol::view::IdRange],
    ) -> Option<ProcessesView> {
        let pid_ns = ns[3];
        let level = self.process(s.pid)?.0.nspid.len() - 1;
        let members: Vec<i32> = if pid_ns == world.host_ns[3] {
            world
                .owners
                .iter()
                .filter(|(_, owner)| **owner == s.name)
                .map(|(pid, _)| *pid)
                .collect()
        } else {
            world
                .pid_ns_of
                .iter()
                .filter(|(_, ino)| **ino == pid_ns)
                .map(|(pid, _)| *pid)
                .collect()
        };
        let mut list = Vec::new();
        for pid in members {
            let Some((st, cmd)) = self.process(pid) else {
                continue;
            };
            let owner = world.owners.get(&pid).filter(|o| **o != s.name);
            list.push(ProcessView {
                pid,
                pid_inside: st.nspid.get(level).copied().unwrap_or(pid),
                ppid: st.ppid,
                uid_inside: procfs::id_inside(uid_map, st.uid),
                uid_host: st.uid,
                cmd,
                container: owner.cloned(),
            });
        }
        link_parents(&mut list);
        Some(ProcessesView {
            list,
            host_total: None,
        })
    }

    /// A container's cgroup figures, as [`CgroupManager::stats`] reads them, through files kept
    /// open.
    fn cgroup_stats(&mut self, cgroups: &dyn CgroupManager, id: &str) -> Option<Stats> {
        /// One file through `kept`; `missing` says a file was not there.
        fn read(
            kept: &mut kept::Kept,
            path: &std::path::Path,
            missing: &mut bool,
        ) -> std::io::Result<Option<String>> {
            match kept.read(path, 0, kept::Ends::Short)? {
                kept::Read::Kept(b) | kept::Read::Opened(b) => kept::utf8(b).map(Some),
                kept::Read::Missing => {
                    *missing = true;
                    Ok(None)
                }
            }
        }
        let kept = &mut self.kept;
        let mut missing = false;
        // Where the files were found before: right unless the cgroup is gone (a kept file
        // then fails to read) or a file is missing (which stats reads as 0 only while the
        // cgroup is there).
        let mut before = None;
        if let Some(sources) = self.cgroup_sources.get(id) {
            if let Ok(stats) = sources.read_with(&mut |p| read(kept, p, &mut missing)) {
                if !missing {
                    return Some(stats);
                }
                before = Some((sources.clone(), stats));
            }
        }
        let Ok(sources) = cgroups.stats_sources(id) else {
            self.cgroup_sources.remove(id);
            return None;
        };
        let stats = match before {
            Some((b, stats)) if b == sources => stats,
            _ => sources
                .read_with(&mut |p| read(kept, p, &mut missing))
                .ok()?,
        };
        self.cgroup_sources.insert(id.to_string(), sources);
        Some(stats)
    }

    fn cgroup(&mut self, cgroups: &dyn CgroupManager, s: &Subject) -> Option<CgroupView> {
        let stats = self.cgroup_stats(cgroups, &s.id)?;
        let now = Instant::now();
        let rate = match self.cpu.insert(s.id.clone(), (stats.cpu_usage_usec, now)) {
            Some((before, at)) => {
                let wall = now.duration_since(at).as_micros() as f64;
                let used = stats.cpu_usage_usec.saturating_sub(before) as f64;
                if wall > 0.0 {
                    // Rounded: the page draws two digits, and a steady idle reads as 0.
                    (used / wall * 1000.0).round() / 1000.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        Some(CgroupView {
            version: match cgroups.version() {
                CgroupVersion::V1 => "v1",
                CgroupVersion::V2 => "v2",
            }
            .to_string(),
            memory_current: stats.memory_current,
            memory_peak: stats.memory_peak,
            memory_limit: stats.memory_limit,
            oom_kills: stats.oom_kills,
            cpu_usage_usec: stats.cpu_usage_usec,
            cpu_rate: rate,
            cpu_limit: s.cpu_limit,
            cpu_throttled_usec: stats.cpu_throttled_usec,
            pids_current: stats.pids_current,
            pids_limit: stats.pids_limit,
        })
    }
}

/// What one observation reads once for all targets.
struct World<'a> {
    subjects: &'a [Subject],
    host_ns: [u64; 8],
    /// Each subject's namespaces, by name (absent: its process is gone).
    ns: BTreeMap<String, [u64; 8]>,
    /// Host pid → the name of the session's container whose cgroup holds it.
    owners: BTreeMap<i32, String>,
    /// Host pid → pid namespace inode, for the session's processes (read only when a watched
    /// container has a pid namespace of its own). Every process in a container's pid namespace
    /// is in one of the session's cgroups: `exec` joins the container's cgroup, and a pid
    /// namespace can only be joined from one of its ancestors' (which a container cannot reach).
    pid_ns_of: BTreeMap<i32, u64>,
    host_total: u32,
    network: Option<&'a SessionNetwork>,
    /// The host's interfaces (for veth peers on the host, and the bridge), on slow passes.
    host_links: Vec<crate::network::netlink::Link>,
    /// On slow passes, the network namespaces a veth's peer may be in: the host's, and each
    /// container's that is not the host's (with its inode), in the order of `subjects`.
    host_net: Option<links::Candidate>,
    nets: Vec<(u64, links::Candidate)>,
}

impl<'a> World<'a> {
    /// The namespaces a veth of `me` (None: the host) may lead to: the host's, and every other
    /// container's that is not `me`'s own.
    fn candidates(&self, me: Option<&Subject>) -> Vec<&links::Candidate> {
        let mine = me.and_then(|s| self.ns.get(&s.name)).map(|n| n[4]);
        let host = self.host_net.as_ref().filter(|_| me.is_some());
        host.into_iter()
            .chain(
                self.nets
                    .iter()
                    .filter(|(ino, _)| Some(*ino) != mine)
                    .map(|(_, c)| c),
            )
            .collect()
    }

    /// `s`'s own network namespace (opened on slow passes, when not the host's).
    fn own_net(&self, s: &Subject) -> Option<&std::fs::File> {
        self.nets
            .iter()
            .find(|(_, c)| c.container.as_deref() == Some(s.name.as_str()))
            .map(|(_, c)| &c.netns)
    }

    /// The network namespaces of `subjects` that are not the host's, as candidates.
    fn nets(
        subjects: &[Subject],
        ns: &BTreeMap<String, [u64; 8]>,
        host: u64,
    ) -> Vec<(u64, links::Candidate)> {
        let mut out = Vec::new();
        for s in subjects {
            let Some(theirs) = ns.get(&s.name).map(|n| n[4]) else {
                continue;
            };
            if theirs == host {
                continue;
            }
            if let Ok(f) = std::fs::File::open(format!("/proc/{}/ns/net", s.pid)) {
                let candidate = links::Candidate {
                    label: format!("in {}", s.name),
                    container: Some(s.name.clone()),
                    netns: f,
                };
                out.push((theirs, candidate));
            }
        }
        out
    }

    fn read(
        cgroups: &dyn CgroupManager,
        subjects: &'a [Subject],
        watched: &BTreeSet<ViewTarget>,
        known_ns: &HashMap<i32, [u64; 8]>,
        network: Option<&'a SessionNetwork>,
        slow_pass: bool,
        kept: &mut kept::Kept,
    ) -> World<'a> {
        let host_ns = procfs::ns_inodes_kept(kept, "self").unwrap_or_default();
        let ns: BTreeMap<String, [u64; 8]> = subjects
            .iter()
            .filter_map(|s| Some((s.name.clone(), *known_ns.get(&s.pid)?)))
            .collect();
        // One cgroup.procs per container is enough (on v1 every hierarchy holds the same
        // processes: the runtime puts each in all of them). Opened anew each time: on v1 a
        // cgroup.procs kept open and read again from its start lists the pids of its first
        // read for a while (the kernel keeps that list for a second after each read).
        let mut owners = BTreeMap::new();
        for s in subjects {
            let pids = cgroups
                .procs_files(&s.id)
                .iter()
                .find_map(|f| kept::read_file(f).ok().and_then(|b| kept::utf8(b).ok()))
                .unwrap_or_default();
            for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                owners.insert(pid, s.name.clone());
            }
        }
        let own_pid_ns = watched.iter().any(|t| match t {
            ViewTarget::Container(name) => ns.get(name).is_some_and(|n| n[3] != host_ns[3]),
            ViewTarget::Host => false,
        });
        let pid_ns_of = if own_pid_ns {
            owners
                .keys()
                .filter_map(|&p| {
                    let ino = procfs::ns_inode_kept(kept, &p.to_string(), NsKind::Pid).ok()?;
                    Some((p, ino))
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let host_total = if watched.contains(&ViewTarget::Host) {
            procfs::all_pids().map_or(0, |p| p.len() as u32)
        } else {
            0
        };
        // Only slow passes read interfaces and the network, which need the host's links and
        // the namespaces veths lead to.
        let (host_links, host_net, nets) = if slow_pass {
            let host_net =
                std::fs::File::open("/proc/self/ns/net")
                    .ok()
                    .map(|f| links::Candidate {
                        label: "on the host".into(),
                        container: None,
                        netns: f,
                    });
            (
                crate::network::netlink::links().unwrap_or_default(),
                host_net,
                World::nets(subjects, &ns, host_ns[4]),
            )
        } else {
            (Vec::new(), None, Vec::new())
        };
        World {
            subjects,
            host_ns,
            ns,
            owners,
            pid_ns_of,
            host_total,
            network,
            host_links,
            host_net,
            nets,
        }
    }

    /// One row per kind: the inode and who else is in that namespace.
    fn namespaces(&self, me: Option<&str>, mine: &[u64; 8]) -> Vec<NsView> {
        NsKind::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| mine[*i] != 0)
            .map(|(i, kind)| {
                let mut shared_with = Vec::new();
                if me.is_some() && self.host_ns[i] == mine[i] {
                    shared_with.push("host".to_string());
                }
                for (name, theirs) in &self.ns {
                    if Some(name.as_str()) != me && theirs[i] == mine[i] {
                        shared_with.push(name.clone());
                    }
                }
                NsView {
                    kind: kind.proc_name().to_string(),
                    inode: mine[i],
                    shared_with,
                }
            })
            .collect()
    }
}

/// A parent outside the list is 0, so the list draws as a tree of its own.
fn link_parents(list: &mut [ProcessView]) {
    let pids: BTreeSet<i32> = list.iter().map(|p| p.pid).collect();
    for p in list.iter_mut() {
        if !pids.contains(&p.ppid) {
            p.ppid = 0;
        }
    }
}

/// The sections of `now` that differ from `last`; `last` becomes `now`.
fn changes(last: &mut ViewUpdate, now: ViewUpdate) -> ViewUpdate {
    fn section<T: PartialEq + Clone>(last: &mut Option<T>, now: Option<T>) -> Option<T> {
        match now {
            Some(v) if last.as_ref() != Some(&v) => {
                *last = Some(v.clone());
                Some(v)
            }
            _ => None,
        }
    }
    ViewUpdate {
        namespaces: section(&mut last.namespaces, now.namespaces),
        processes: section(&mut last.processes, now.processes),
        uts: section(&mut last.uts, now.uts),
        interfaces: section(&mut last.interfaces, now.interfaces),
        mounts: section(&mut last.mounts, now.mounts),
        id_maps: section(&mut last.id_maps, now.id_maps),
        cgroup: section(&mut last.cgroup, now.cgroup),
        kernel: section(&mut last.kernel, now.kernel),
        network: section(&mut last.network, now.network),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isolab_shared::protocol::view::UtsView;

    fn uts(name: &str) -> Option<UtsView> {
        Some(UtsView {
            hostname: name.into(),
            domainname: "(none)".into(),
        })
    }

    #[test]
    fn only_changed_sections_are_sent() {
        let mut last = ViewUpdate::default();
        let first = ViewUpdate {
            uts: uts("alpha"),
            kernel: Some(KernelView {
                release: "6.1".into(),
                shared_with_host: true,
            }),
            ..ViewUpdate::default()
        };
        assert_eq!(changes(&mut last, first.clone()), first, "first time: all");
        assert!(changes(&mut last, first.clone()).is_empty(), "nothing new");
        let renamed = ViewUpdate {
            uts: uts("gamma"),
            ..first.clone()
        };
        assert_eq!(
            changes(&mut last, renamed),
            ViewUpdate {
                uts: uts("gamma"),
                ..ViewUpdate::default()
            }
        );
        // A section that could not be read this time is not "changed to nothing".
        assert!(changes(&mut last, ViewUpdate::default()).is_empty());
        assert_eq!(last.uts, uts("gamma"));
    }

    /// The whole pass against a fake cgroup v2 folder, with this test process as the
    /// container: the cgroup section comes from v2's files, the processes from its procs.
    #[test]
    fn a_pass_reads_a_cgroup_v2_container() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("isolab/c0ffee");
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::process::id() as i32;
        for (file, text) in [
            ("cgroup.procs", format!("{me}\n")),
            ("memory.current", "1048576\n".into()),
            ("memory.peak", "2097152\n".into()),
            ("memory.max", "67108864\n".into()),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n".into()),
            ("cpu.stat", "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\nnr_periods 0\nnr_throttled 2\nthrottled_usec 700\n".into()),
            ("pids.current", "1\n".into()),
            ("pids.max", "max\n".into()),
        ] {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let cgroups = crate::runtime::cgroups::new_v2(root.path());
        let subjects = [Subject {
            name: "alpha".into(),
            id: "c0ffee".into(),
            pid: me,
            cpu_limit: Some(0.5),
        }];
        let alpha = ViewTarget::Container("alpha".into());
        let watched: BTreeSet<ViewTarget> = [alpha.clone(), ViewTarget::Host].into();
        let mut observer = Observer::new();
        let updates = observer.observe(
            cgroups.as_ref(),
            &subjects,
            &watched,
            &BTreeSet::new(),
            None,
        );
        let (_, view) = updates
            .iter()
            .find(|(t, _)| *t == alpha)
            .expect("a view of alpha");
        let cg = view.cgroup.as_ref().unwrap();
        assert_eq!(cg.version, "v2");
        assert_eq!(
            (
                cg.memory_current,
                cg.memory_peak,
                cg.memory_limit,
                cg.oom_kills
            ),
            (1 << 20, Some(2 << 20), Some(64 << 20), 1)
        );
        assert_eq!((cg.cpu_usage_usec, cg.cpu_throttled_usec), (5000, 700));
        assert_eq!(
            (cg.pids_current, cg.pids_limit, cg.cpu_limit),
            (1, None, Some(0.5))
        );
        let procs = &view.processes.as_ref().unwrap().list;
        assert_eq!(procs.iter().map(|p| p.pid).collect::<Vec<_>>(), [me]);
        // It shares every namespace with the host (it is the host): each row says so.
        let ns = view.namespaces.as_ref().unwrap();
        assert!(ns.iter().all(|n| n.shared_with == ["host"]), "{ns:?}");
        assert!(view.mounts.is_some() && view.interfaces.is_some() && view.id_maps.is_some());

        // Nothing changed: the next pass sends nothing for alpha but its CPU rate (now 0).
        std::fs::write(dir.join("memory.current"), "1048576\n").unwrap();
        let again = observer.observe(
            cgroups.as_ref(),
            &subjects,
            &watched,
            &BTreeSet::new(),
            None,
        );
        if let Some((_, v)) = again.iter().find(|(t, _)| *t == alpha) {
            assert!(
                v.namespaces.is_none() && v.uts.is_none() && v.mounts.is_none(),
                "{v:?}"
            );
        }
        // A change between passes shows (read again through the file kept open).
        std::fs::write(dir.join("memory.current"), "3145728\n").unwrap();
        let changed = observer.observe(
            cgroups.as_ref(),
            &subjects,
            &watched,
            &BTreeSet::new(),
            None,
        );
        let (_, v) = changed.iter().find(|(t, _)| *t == alpha).unwrap();
        assert_eq!(v.cgroup.as_ref().unwrap().memory_current, 3 << 20);
        // A fresh watch gets every section again.
        let fresh: BTreeSet<ViewTarget> = [alpha.clone()].into();
        let full = observer.observe(cgroups.as_ref(), &subjects, &watched, &fresh, None);
        let (_, v) = full.iter().find(|(t, _)| *t == alpha).unwrap();
        assert!(v.namespaces.is_some() && v.mounts.is_some() && v.cgroup.is_some());
    }

    #[test]
    fn parents_outside_the_list_are_roots() {
        let p = |pid, ppid| ProcessView {
            pid,
            pid_inside: pid,
            ppid,
            uid_inside: 0,
            uid_host: 0,
            cmd: String::new(),
            container: None,
        };
        let mut list = vec![p(10, 9), p(11, 10)];
        link_parents(&mut list);
        assert_eq!((list[0].ppid, list[1].ppid), (0, 10));
    }
}
