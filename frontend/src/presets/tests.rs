use isolab_shared::protocol::{ContainerInfo, ServerMsg};

use super::*;

fn info(id: &str, name: &str) -> ContainerInfo {
    ContainerInfo {
        runtime: String::new(),
        id: id.to_string(),
        name: name.to_string(),
        image: "busybox".to_string(),
        hostname: name.to_string(),
        cmd: vec!["sh".to_string()],
        handles: vec![1],
        address: None,
        ports: Vec::new(),
    }
}

fn created(reference: u64, name: &str) -> ServerMsg {
    ServerMsg::Created {
        reference: Some(reference),
        container: info(&format!("{name}-id"), name),
        handle: 1,
    }
}

fn names(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match c {
            Command::Remove(id) => format!("remove {id}"),
            Command::Create(spec) => format!("create {}", spec.name.as_deref().unwrap_or("?")),
        })
        .collect()
}

/// Sends what the runner asks for, numbering requests from `next_ref`.
fn send_all(runner: &mut Runner, next_ref: &mut u64) -> Vec<String> {
    let commands = runner.requests();
    for command in &commands {
        runner.sent(command, Some(*next_ref));
        *next_ref += 1;
    }
    names(&commands)
}

#[test]
fn every_preset_is_a_valid_spec_list_with_a_hint() {
    for preset in Preset::ALL {
        let specs = preset.specs();
        assert_eq!(specs.len(), 2, "{preset:?}");
        for spec in &specs {
            assert_eq!(spec.problems(), vec![], "{preset:?} {spec:?}");
            assert!(spec.tty);
            assert_eq!(spec.hostname, spec.name);
        }
        assert!(!preset.hint().is_empty());
        assert!(!preset.label().is_empty());
    }
    let ids: Vec<_> = Preset::ALL.iter().map(|p| p.id()).collect();
    assert_eq!(ids, vec!["uts", "pid", "shared-pid", "net", "cgroup"]);
}

#[test]
fn the_uts_preset_is_what_the_issue_asks_for() {
    let specs = Preset::Uts.specs();
    let json = serde_json::to_value(&specs[0]).unwrap();
    assert_eq!(json["name"], "alpha");
    assert_eq!(json["hostname"], "alpha");
    assert_eq!(json["image"], "busybox");
    assert_eq!(json["cmd"], serde_json::json!(["sh"]));
    assert_eq!(json["tty"], true);
    assert_eq!(json["namespaces"]["user"], "private");
    assert_eq!(json["cap_add"], serde_json::json!(["SYS_ADMIN"]));
    assert_eq!(specs[1].name.as_deref(), Some("beta"));
    assert!(Preset::Uts.hint().concat().contains("CAP_SYS_ADMIN"));
}

#[test]
fn joined_namespaces_and_limits() {
    let shared = Preset::SharedPid.specs();
    assert_eq!(shared[0].namespaces.pid, NsMode::Private);
    assert_eq!(shared[1].namespaces.pid, NsMode::Container("alpha".into()));
    let net = Preset::Net.specs();
    assert_eq!(net[0].namespaces.net, NsMode::Private);
    assert!(net[0].network_none(), "alpha: only lo");
    assert!(net.iter().all(|s| s.validate().is_ok()));
    assert_eq!(net[1].namespaces.net, NsMode::Container("alpha".into()));
    let cg = Preset::Cgroup.specs();
    assert_eq!(cg[0].name.as_deref(), Some("hog"));
    assert_eq!(cg[0].memory, Some(MemorySize(32 << 20)));
    assert_eq!(cg[1].name.as_deref(), Some("bomb"));
    assert_eq!(cg[1].pids_limit, Some(24));
    let plain = Preset::Pid.specs();
    assert_eq!(plain[0].namespaces, Default::default());
    assert!(plain[0].cap_add.is_empty());
}

#[test]
fn a_run_removes_everything_then_creates_one_after_the_other() {
    let mut runner = Runner::new(Preset::SharedPid, vec!["old1".into(), "old2".into()]);
    let mut next_ref = 10;
    assert_eq!(
        send_all(&mut runner, &mut next_ref),
        vec!["remove old1", "remove old2"]
    );
    assert_eq!(runner.status().phase, Phase::Removing);
    assert_eq!(
        send_all(&mut runner, &mut next_ref),
        Vec::<String>::new(),
        "nothing twice"
    );

    // old1's removal answered; old2 still listed.
    runner.on_message(&ServerMsg::State {
        reference: Some(10),
        containers: vec![info("old2", "x")],
    });
    assert_eq!(send_all(&mut runner, &mut next_ref), Vec::<String>::new());
    runner.on_message(&ServerMsg::State {
        reference: Some(11),
        containers: vec![],
    });
    assert_eq!(send_all(&mut runner, &mut next_ref), vec!["create alpha"]);
    assert_eq!(runner.status().phase, Phase::Creating("alpha".into()));
    // Not before alpha is created.
    runner.on_message(&ServerMsg::State {
        reference: None,
        containers: vec![],
    });
    assert_eq!(send_all(&mut runner, &mut next_ref), Vec::<String>::new());
    // Someone else's `created` (a shell) is not the one waited for.
    runner.on_message(&created(99, "zeta"));
    assert_eq!(send_all(&mut runner, &mut next_ref), Vec::<String>::new());

    runner.on_message(&created(12, "alpha"));
    assert_eq!(send_all(&mut runner, &mut next_ref), vec!["create beta"]);
    assert!(!runner.finished());
    runner.on_message(&created(13, "beta"));
    assert_eq!(send_all(&mut runner, &mut next_ref), Vec::<String>::new());
    assert_eq!(runner.status().phase, Phase::Ready);
    assert!(runner.finished());
}

#[test]
fn with_nothing_to_remove_it_creates_at_once() {
    let mut runner = Runner::new(Preset::Uts, vec![]);
    let mut next_ref = 1;
    let commands = runner.requests();
    assert_eq!(names(&commands), vec!["create alpha"]);
    let Command::Create(spec) = &commands[0] else {
        panic!("a create")
    };
    assert_eq!(spec.cap_add, vec!["SYS_ADMIN"]);
    runner.sent(&commands[0], Some(next_ref));
    next_ref += 1;
    runner.on_message(&created(1, "alpha"));
    assert_eq!(send_all(&mut runner, &mut next_ref), vec!["create beta"]);
}

#[test]
fn a_failed_removal_does_not_hold_the_run_up() {
    let mut runner = Runner::new(Preset::Pid, vec!["gone".into()]);
    let mut next_ref = 5;
    send_all(&mut runner, &mut next_ref);
    runner.on_message(&ServerMsg::error(
        Some(5),
        "unknown_container",
        "no container gone",
    ));
    assert_eq!(send_all(&mut runner, &mut next_ref), vec!["create alpha"]);
}

#[test]
fn a_refused_create_stops_the_run_with_the_servers_words() {
    let mut runner = Runner::new(Preset::Uts, vec![]);
    let mut next_ref = 1;
    send_all(&mut runner, &mut next_ref);
    // Another request's error is not ours.
    runner.on_message(&ServerMsg::error(Some(77), "runtime", "unrelated"));
    assert!(!runner.finished());
    runner.on_message(&ServerMsg::error(
        Some(1),
        "limit_reached",
        "the session has 8 containers",
    ));
    assert_eq!(
        runner.status().phase,
        Phase::Failed("creating alpha: limit_reached: the session has 8 containers".into())
    );
    assert!(runner.finished());
    assert!(runner.requests().is_empty());
}

#[test]
fn an_unsent_request_or_a_lost_connection_stops_the_run() {
    let mut runner = Runner::new(Preset::Pid, vec![]);
    let commands = runner.requests();
    runner.sent(&commands[0], None);
    assert_eq!(runner.status().phase, Phase::Failed("not connected".into()));

    let mut runner = Runner::new(Preset::Pid, vec![]);
    runner.requests();
    runner.abort("the connection was lost");
    assert!(runner.finished());
    runner.abort("again");
    assert_eq!(
        runner.status().phase,
        Phase::Failed("the connection was lost".into())
    );
}

#[test]
fn hints_split_into_text_and_commands() {
    assert_eq!(
        hint_pieces("Run `hostname gamma` in alpha"),
        vec![
            ("Run ", false),
            ("hostname gamma", true),
            (" in alpha", false)
        ]
    );
    assert_eq!(hint_pieces("`ps`"), vec![("ps", true)]);
}
