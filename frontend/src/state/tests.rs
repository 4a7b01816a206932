use isolab_shared::protocol::{ContainerInfo, Limits, ServerMsg, ViewTarget, ViewUpdate};

use super::*;

fn limits() -> Limits {
    Limits {
        max_containers: 2,
        ..Limits::default()
    }
}

fn info(id: &str, name: &str, handles: &[u32]) -> ContainerInfo {
    ContainerInfo {
        runtime: String::new(),
        id: id.to_string(),
        name: name.to_string(),
        image: "busybox".to_string(),
        hostname: name.to_string(),
        cmd: vec!["sh".to_string()],
        handles: handles.to_vec(),
        address: None,
        ports: Vec::new(),
    }
}

fn hello(containers: Vec<ContainerInfo>) -> Action {
    Action::Received(ServerMsg::Hello {
        version: 1,
        limits: limits(),
        containers,
        lesson: None,
        workshop: None,
    })
}

fn created(reference: Option<u64>, container: ContainerInfo, handle: u32) -> Action {
    Action::Received(ServerMsg::Created {
        reference,
        container,
        handle,
    })
}

fn exited(handle: u32, container: &str, code: i32, signal: Option<i32>) -> Action {
    Action::Received(ServerMsg::Exited {
        handle,
        container: container.to_string(),
        code,
        signal,
        oom_killed: false,
    })
}

fn state_msg(reference: Option<u64>, containers: Vec<ContainerInfo>) -> Action {
    Action::Received(ServerMsg::State {
        reference,
        containers,
    })
}

fn error(reference: Option<u64>, code: &str, field: Option<&str>) -> Action {
    Action::Received(ServerMsg::Error {
        reference,
        code: code.to_string(),
        message: format!("{code} happened"),
        field: field.map(str::to_string),
    })
}

/// An open connection with `alpha` (handle 1) running.
fn with_alpha() -> AppState {
    let mut s = AppState::default();
    s.apply(hello(vec![]));
    s.apply(Action::Sent {
        reference: 1,
        origin: Origin::Create,
    });
    s.apply(created(Some(1), info("a1", "alpha", &[1]), 1));
    s
}

#[test]
fn hello_opens_the_connection_and_restores_terminals() {
    let mut s = AppState::default();
    assert_eq!(s.conn, Conn::Connecting);
    s.apply(hello(vec![info("a1", "alpha", &[1, 3])]));
    assert_eq!(s.conn, Conn::Open);
    assert_eq!(s.session, 1);
    assert_eq!(s.limits, Some(limits()));
    assert_eq!(s.cards.len(), 1);
    let handles: Vec<_> = s.panes.iter().map(|p| p.handle).collect();
    assert_eq!(handles, vec![1, 3]);
    assert_eq!(s.panes[0].title, "alpha · sh");
    assert_eq!(s.panes[1].title, "alpha · shell #3");
}

#[test]
fn create_is_busy_until_created_then_adds_a_card_and_a_pane() {
    let mut s = AppState::default();
    s.apply(hello(vec![]));
    s.apply(Action::Sent {
        reference: 7,
        origin: Origin::Create,
    });
    assert!(s.creating);
    s.apply(created(Some(7), info("a1", "alpha", &[1]), 1));
    assert!(!s.creating);
    assert!(s.pending.is_empty());
    assert_eq!(s.cards[0].info.name, "alpha");
    assert!(s.cards[0].running());
    assert_eq!(s.panes.len(), 1);
    assert_eq!(s.panes[0].container, "a1");
    assert_eq!(s.running_names(), vec!["alpha"]);
}

#[test]
fn a_refused_create_lands_on_the_form_with_its_field() {
    let mut s = AppState::default();
    s.apply(hello(vec![]));
    s.apply(Action::Sent {
        reference: 2,
        origin: Origin::Create,
    });
    s.apply(error(
        Some(2),
        "host_namespace_not_allowed",
        Some("namespaces.net"),
    ));
    assert!(!s.creating);
    let problem = s.form_error.clone().unwrap();
    assert_eq!(problem.code, "host_namespace_not_allowed");
    assert_eq!(problem.field.as_deref(), Some("namespaces.net"));
    assert_eq!(s.notice, None);
    // The next attempt clears it.
    s.apply(Action::Sent {
        reference: 3,
        origin: Origin::Create,
    });
    assert_eq!(s.form_error, None);
}

#[test]
fn an_exec_error_lands_on_its_card_and_one_without_ref_is_a_notice() {
    let mut s = with_alpha();
    s.apply(Action::Sent {
        reference: 4,
        origin: Origin::Exec("a1".into()),
    });
    assert!(s.cards[0].busy);
    s.apply(error(Some(4), "runtime", None));
    assert!(!s.cards[0].busy);
    assert_eq!(s.cards[0].error.as_ref().unwrap().code, "runtime");
    assert_eq!(s.form_error, None);

    s.apply(error(None, "bad_frame", None));
    assert_eq!(s.notice.as_deref(), Some("bad_frame: bad_frame happened"));
    s.apply(Action::ClearNotice);
    assert_eq!(s.notice, None);
}

#[test]
fn exec_adds_a_shell_pane_whose_exit_is_shown_and_can_be_closed() {
    let mut s = with_alpha();
    s.apply(Action::Sent {
        reference: 5,
        origin: Origin::Exec("a1".into()),
    });
    s.apply(created(Some(5), info("a1", "alpha", &[1, 2]), 2));
    assert!(!s.cards[0].busy);
    assert_eq!(s.panes.len(), 2);

    s.apply(exited(2, "a1", 0, None));
    assert_eq!(
        s.panes[1].exit.as_ref().unwrap().describe(),
        "exited with code 0"
    );
    assert!(s.cards[0].running(), "a shell's end is not the container's");
    assert_eq!(s.cards[0].info.handles, vec![1]);

    // A running terminal cannot be closed; an ended one can.
    s.apply(Action::ClosePane(1));
    s.apply(Action::ClosePane(2));
    let handles: Vec<_> = s.panes.iter().map(|p| p.handle).collect();
    assert_eq!(handles, vec![1]);
}

#[test]
fn the_main_process_ending_keeps_the_card_with_its_exit_status() {
    let mut s = with_alpha();
    s.apply(exited(1, "a1", 137, Some(9)));
    // The server then lists the container no more.
    s.apply(state_msg(None, vec![]));
    let card = &s.cards[0];
    assert!(!card.running());
    assert_eq!(
        card.exit.as_ref().unwrap().describe(),
        "killed by signal 9 (code 137)"
    );
    assert_eq!(s.panes.len(), 1);
    assert!(s.running_names().is_empty());

    s.apply(Action::Dismiss("a1".into()));
    assert!(s.cards.is_empty());
    assert!(s.panes.is_empty());
}

#[test]
fn remove_drops_the_card_and_its_terminals() {
    let mut s = with_alpha();
    s.apply(created(None, info("b2", "beta", &[2]), 2));
    s.apply(Action::Sent {
        reference: 9,
        origin: Origin::Remove("a1".into()),
    });
    s.apply(state_msg(Some(9), vec![info("b2", "beta", &[2])]));
    assert_eq!(s.cards.len(), 1);
    assert_eq!(s.cards[0].info.name, "beta");
    let handles: Vec<_> = s.panes.iter().map(|p| p.handle).collect();
    assert_eq!(handles, vec![2]);
}

#[test]
fn limits_tell_when_the_session_is_full() {
    let mut s = with_alpha();
    assert!(!s.at_limit());
    s.apply(created(None, info("b2", "beta", &[2]), 2));
    assert!(s.at_limit());
    s.apply(exited(2, "b2", 0, None));
    assert!(!s.at_limit(), "an exited container does not count");
}

#[test]
fn losing_the_connection_clears_pending_work_and_says_what_was_lost() {
    let mut s = with_alpha();
    s.apply(Action::Sent {
        reference: 11,
        origin: Origin::Exec("a1".into()),
    });
    s.apply(Action::Closed);
    assert_eq!(s.conn, Conn::Closed);
    assert!(s.pending.is_empty());
    assert!(!s.cards[0].busy);

    s.apply(Action::Connecting);
    assert_eq!(s.conn, Conn::Connecting);
    s.apply(hello(vec![]));
    assert_eq!(s.session, 2);
    assert!(s.cards.is_empty());
    assert!(s.panes.is_empty());
    assert!(s.notice.as_deref().unwrap().contains("removed"));
}

#[test]
fn pane_keys_differ_between_connections() {
    let s = with_alpha();
    assert_ne!(s.panes[0].key(1), s.panes[0].key(2));
}

#[test]
fn columns_are_one_or_two() {
    let mut s = AppState::default();
    s.apply(Action::SetColumns(1));
    assert_eq!(s.columns, 1);
    s.apply(Action::SetColumns(5));
    assert_eq!(s.columns, 2);
}

#[test]
fn a_create_error_without_field_gets_it_from_its_message() {
    let mut s = AppState::default();
    s.apply(hello(vec![]));
    s.apply(Action::Sent {
        reference: 1,
        origin: Origin::Create,
    });
    s.apply(Action::Received(ServerMsg::Error {
        reference: Some(1),
        code: "host_namespace_not_allowed".into(),
        message: "namespaces.net: sharing the host's net namespace is not allowed".into(),
        field: None,
    }));
    let problem = s.form_error.unwrap();
    assert_eq!(problem.field.as_deref(), Some("namespaces.net"));
    assert_eq!(
        problem.message,
        "sharing the host's net namespace is not allowed"
    );
}

#[test]
fn located_keeps_what_is_not_a_spec_field() {
    let runtime = Problem {
        code: "runtime".into(),
        message: "mount /proc: permission denied".into(),
        field: None,
    };
    assert_eq!(runtime.clone().located(), runtime);
    let named = Problem {
        code: "invalid_hostname".into(),
        message: "hostname: \"a/b\" is not valid".into(),
        field: Some("hostname".into()),
    };
    assert_eq!(named.located().message, "\"a/b\" is not valid");
    let other = Problem {
        code: "unshare".into(),
        message: "unshare: EPERM".into(),
        field: None,
    };
    assert_eq!(other.clone().located(), other);
}

fn view(target: ViewTarget, hostname: &str) -> Action {
    Action::Received(ServerMsg::View {
        target,
        update: Box::new(ViewUpdate {
            uts: Some(isolab_shared::protocol::view::UtsView {
                hostname: hostname.to_string(),
                domainname: String::new(),
            }),
            cgroup: Some(isolab_shared::protocol::view::CgroupView {
                memory_current: 4096,
                ..Default::default()
            }),
            ..ViewUpdate::default()
        }),
    })
}

fn alpha_target() -> ViewTarget {
    ViewTarget::Container("alpha".into())
}

#[test]
fn views_are_kept_for_the_host_and_running_containers() {
    let mut s = with_alpha();
    s.apply(view(ViewTarget::Host, "server"));
    s.apply(view(alpha_target(), "alpha"));
    s.apply(view(ViewTarget::Container("nobody".into()), "x"));
    assert_eq!(s.views.host.hostname(), Some("server"));
    assert_eq!(
        s.views.container("alpha").unwrap().hostname(),
        Some("alpha")
    );
    assert!(s.views.container("nobody").is_none(), "not one of ours");

    s.apply(view(alpha_target(), "gamma"));
    let alpha = s.views.container("alpha").unwrap();
    assert_eq!(alpha.hostname(), Some("gamma"));
    assert_eq!(alpha.hostname_changed_at, Some(2));
}

#[test]
fn a_container_that_disappears_loses_its_view() {
    let mut s = with_alpha();
    s.apply(view(alpha_target(), "alpha"));
    s.apply(exited(1, "a1", 0, None));
    assert!(
        s.views.container("alpha").is_some(),
        "until the state says so"
    );
    s.apply(state_msg(None, vec![]));
    assert!(s.views.container("alpha").is_none());
    // A late view does not bring it back: its card has ended.
    s.apply(view(alpha_target(), "alpha"));
    assert!(s.views.container("alpha").is_none());
}

#[test]
fn hello_keeps_the_views_of_the_containers_it_lists() {
    let mut s = with_alpha();
    s.apply(created(None, info("b2", "beta", &[2]), 2));
    s.apply(view(alpha_target(), "alpha"));
    s.apply(view(ViewTarget::Container("beta".into()), "beta"));
    s.apply(Action::Closed);
    s.apply(hello(vec![info("b2", "beta", &[2])]));
    assert!(s.views.container("alpha").is_none());
    assert!(s.views.container("beta").is_some());
}

#[test]
fn a_refused_watch_shows_in_the_view_and_a_view_answers_the_watch() {
    let mut s = with_alpha();
    s.apply(Action::Sent {
        reference: 20,
        origin: Origin::Watch(ViewTarget::Host),
    });
    s.apply(Action::Sent {
        reference: 21,
        origin: Origin::Watch(alpha_target()),
    });
    s.apply(error(Some(21), "unknown_type", None));
    assert_eq!(
        s.views.container("alpha").unwrap().error.as_deref(),
        Some("unknown_type: unknown_type happened")
    );
    assert_eq!(s.notice, None, "not a page-wide notice");
    s.apply(view(ViewTarget::Host, "server"));
    assert!(s.pending.is_empty(), "the host's view answered its watch");
}

#[test]
fn the_tick_samples_and_an_idle_tick_changes_nothing() {
    let s = Rc::new(AppState::default());
    let same = s.clone().reduce(Action::Sample);
    assert!(
        Rc::ptr_eq(&s, &same),
        "nothing to sample: no new state, no render"
    );

    let mut s = with_alpha();
    s.apply(view(alpha_target(), "alpha"));
    s.apply(Action::Sample);
    s.apply(Action::Sample);
    let history = &s.views.container("alpha").unwrap().history;
    assert_eq!(history.memory.points(), vec![4096.0, 4096.0]);
}

#[test]
fn preset_progress_and_its_errors_stay_out_of_the_form() {
    use crate::presets::{Phase, Preset, PresetStatus};
    let mut s = AppState::default();
    s.apply(hello(vec![]));
    let status = PresetStatus {
        preset: Preset::Uts,
        phase: Phase::Creating("alpha".into()),
    };
    s.apply(Action::Preset(Some(status.clone())));
    assert_eq!(s.preset, Some(status));
    s.apply(Action::Sent {
        reference: 3,
        origin: Origin::Preset,
    });
    assert!(!s.creating, "the form stays usable");
    s.apply(error(Some(3), "limit_reached", None));
    assert_eq!(s.form_error, None);
    assert_eq!(s.notice, None);
    s.apply(Action::Sent {
        reference: 4,
        origin: Origin::Preset,
    });
    s.apply(created(Some(4), info("a1", "alpha", &[1]), 1));
    assert_eq!(s.cards.len(), 1);
    assert!(s.pending.is_empty());
    s.apply(Action::Preset(None));
    assert_eq!(s.preset, None);
}
