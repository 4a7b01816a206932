//! The facts a condition reads (docs/lessons.md): a JSON tree made from one whole pass of the
//! observer over the session's containers and the host, plus what only the session knows
//! (images, exits, terminal output).

use isolab_shared::protocol::{ViewTarget, ViewUpdate};
use serde_json::{json, Map, Value};

/// What the session adds to the observer's reading.
#[derive(Debug, Default)]
pub struct Extras {
    /// Running containers: name, image, runtime.
    pub containers: Vec<(String, String, String)>,
    /// The last output of each container's terminal (running or ended), by name.
    pub outputs: Vec<(String, String)>,
    /// Containers that ended: name, exit code, OOM-killed.
    pub exited: Vec<(String, i32, bool)>,
    /// Images: name and layer count.
    pub images: Vec<(String, usize)>,
}

/// The facts tree: `{ "alpha": {...}, "host": {...}, "images": {...} }`.
pub fn build(views: &[(ViewTarget, ViewUpdate)], extras: &Extras) -> Value {
    let mut root = Map::new();
    for (name, code, oom) in &extras.exited {
        root.insert(
            name.clone(),
            json!({"running": false, "exited": true, "exit_code": code, "oom_killed": oom}),
        );
    }
    for (name, image, runtime) in &extras.containers {
        let view = views
            .iter()
            .find(|(t, _)| matches!(t, ViewTarget::Container(n) if n == name))
            .map(|(_, v)| v);
        let mut facts = view.map(container_facts).unwrap_or_default();
        facts.insert("running".into(), true.into());
        facts.insert("exited".into(), false.into());
        facts.insert("image".into(), image.clone().into());
        facts.insert("runtime".into(), runtime.clone().into());
        root.insert(name.clone(), Value::Object(facts));
    }
    for (name, output) in &extras.outputs {
        if let Some(Value::Object(facts)) = root.get_mut(name) {
            facts.insert("output".into(), output.clone().into());
        }
    }
    if let Some((_, host)) = views.iter().find(|(t, _)| *t == ViewTarget::Host) {
        let mut facts = Map::new();
        insert_common(&mut facts, host);
        root.insert("host".into(), Value::Object(facts));
    }
    let images: Map<String, Value> = extras
        .images
        .iter()
        .map(|(name, layers)| (name.clone(), json!({ "layers": layers })))
        .collect();
    root.insert("images".into(), Value::Object(images));
    Value::Object(root)
}

/// Namespaces, names and kernel: what the host column has too.
fn insert_common(facts: &mut Map<String, Value>, v: &ViewUpdate) {
    if let Some(namespaces) = &v.namespaces {
        let ns: Map<String, Value> = namespaces
            .iter()
            .map(|n| (n.kind.clone(), n.inode.into()))
            .collect();
        facts.insert("ns".into(), Value::Object(ns));
    }
    if let Some(uts) = &v.uts {
        facts.insert("hostname".into(), uts.hostname.clone().into());
        facts.insert("domainname".into(), uts.domainname.clone().into());
    }
    if let Some(k) = &v.kernel {
        facts.insert("kernel".into(), k.release.clone().into());
    }
}

fn container_facts(v: &ViewUpdate) -> Map<String, Value> {
    let mut facts = Map::new();
    insert_common(&mut facts, v);
    if let Some(p) = &v.processes {
        facts.insert("processes".into(), p.list.len().into());
        let commands: Vec<Value> = p.list.iter().map(|x| x.cmd.clone().into()).collect();
        facts.insert("commands".into(), commands.into());
        if let Some(init) = p.list.iter().find(|x| x.pid_inside == 1) {
            facts.insert("pid1".into(), init.cmd.clone().into());
        }
    }
    if let Some(list) = &v.interfaces {
        let names: Vec<Value> = list.iter().map(|i| i.name.clone().into()).collect();
        let addresses: Vec<Value> = list
            .iter()
            .flat_map(|i| i.addresses.iter().map(|a| a.clone().into()))
            .collect();
        facts.insert("interfaces".into(), names.into());
        facts.insert("addresses".into(), addresses.into());
    }
    if let Some(m) = &v.mounts {
        facts.insert("mounts".into(), m.count.into());
        facts.insert("layers".into(), m.root_layers.len().into());
    }
    if let Some(maps) = &v.id_maps {
        let root = maps
            .uid
            .iter()
            .find(|r| r.inside == 0)
            .map_or(0, |r| r.outside);
        facts.insert("uid_outside".into(), root.into());
    }
    if let Some(c) = &v.cgroup {
        let opt = |x: Option<u64>| x.map_or(Value::Null, Value::from);
        facts.insert("memory_limit".into(), opt(c.memory_limit));
        facts.insert("memory_peak".into(), opt(c.memory_peak));
        facts.insert("memory_current".into(), c.memory_current.into());
        facts.insert("oom_kills".into(), c.oom_kills.into());
        facts.insert("pids_current".into(), c.pids_current.into());
        facts.insert("pids_limit".into(), opt(c.pids_limit));
        let millis = c.cpu_limit.map(|l| (l * 1000.0).round() as u64);
        facts.insert("cpu_limit_millis".into(), opt(millis));
        facts.insert("cpu_throttled_usec".into(), c.cpu_throttled_usec.into());
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use isolab_shared::protocol::view::{NsView, UtsView};

    #[test]
    fn facts_from_views_and_extras() {
        let alpha = ViewUpdate {
            namespaces: Some(vec![NsView {
                kind: "uts".into(),
                inode: 42,
                shared_with: vec![],
            }]),
            uts: Some(UtsView {
                hostname: "gamma".into(),
                domainname: "(none)".into(),
            }),
            ..ViewUpdate::default()
        };
        let views = vec![(ViewTarget::Container("alpha".into()), alpha)];
        let extras = Extras {
            containers: vec![("alpha".into(), "busybox".into(), "isolab".into())],
            outputs: vec![
                ("alpha".into(), "hi\n".into()),
                ("hog".into(), "Killed".into()),
            ],
            exited: vec![("hog".into(), 137, true)],
            images: vec![("busybox".into(), 1)],
        };
        let f = build(&views, &extras);
        assert_eq!(f["alpha"]["hostname"], "gamma");
        assert_eq!(f["alpha"]["ns"]["uts"], 42);
        assert_eq!(f["alpha"]["running"], true);
        assert_eq!(f["alpha"]["output"], "hi\n");
        assert_eq!(f["hog"]["oom_killed"], true);
        assert_eq!(f["hog"]["exit_code"], 137);
        assert_eq!(f["hog"]["output"], "Killed");
        assert_eq!(f["images"]["busybox"]["layers"], 1);
    }
}
