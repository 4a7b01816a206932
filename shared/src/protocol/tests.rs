use super::*;
use serde_json::{json, Value};

fn spec() -> ContainerSpec {
    ContainerSpec::new("busybox", vec!["sh".into()])
}

fn limits() -> Limits {
    Limits::default()
}

fn info() -> ContainerInfo {
    ContainerInfo {
        id: "3f2a9c01b7de".into(),
        name: "alpha".into(),
        image: "busybox".into(),
        hostname: "alpha".into(),
        cmd: vec!["sh".into()],
        handles: vec![1, 4],
        address: None,
        ports: Vec::new(),
        runtime: "runc".into(),
    }
}

fn every_client_msg() -> Vec<ClientMsg> {
    vec![
        ClientMsg::Create {
            reference: Some(1),
            spec: Box::new(spec()),
        },
        ClientMsg::Exec {
            reference: None,
            container: "alpha".into(),
            cmd: vec![],
            env: vec![],
        },
        ClientMsg::Exec {
            reference: Some(2),
            container: "alpha".into(),
            cmd: vec!["env".into()],
            env: vec!["GREETING=hi".into()],
        },
        ClientMsg::Eof {
            reference: None,
            handle: 1,
        },
        ClientMsg::Resize {
            reference: Some(3),
            handle: 1,
            rows: 24,
            cols: 80,
        },
        ClientMsg::Signal {
            reference: Some(4),
            handle: 1,
            signal: "INT".into(),
        },
        ClientMsg::Remove {
            reference: Some(5),
            container: "alpha".into(),
        },
        ClientMsg::List { reference: None },
        ClientMsg::Ack {
            handle: 1,
            bytes: 4096,
        },
        ClientMsg::Watch {
            reference: Some(6),
            target: ViewTarget::Container("alpha".into()),
        },
        ClientMsg::Unwatch {
            reference: None,
            target: ViewTarget::Host,
        },
        ClientMsg::Images { reference: Some(7) },
        ClientMsg::Build {
            reference: Some(8),
            name: "hello".into(),
            dockerfile: "FROM busybox\nRUN echo hi > /hi\n".into(),
        },
        ClientMsg::Diff {
            reference: None,
            container: "alpha".into(),
        },
        ClientMsg::MoveInterface {
            reference: Some(12),
            interface: "cable0".into(),
            from: "alpha".into(),
            to: "beta".into(),
            kind: None,
        },
        ClientMsg::MoveInterface {
            reference: None,
            interface: "dummy0".into(),
            from: "alpha".into(),
            to: "beta".into(),
            kind: Some(InterfaceKind::Dummy),
        },
        ClientMsg::Lessons { reference: None },
        ClientMsg::LessonStart {
            reference: Some(13),
            lesson: "uts".into(),
        },
        ClientMsg::LessonSolve {
            reference: Some(14),
            step: 1,
        },
        ClientMsg::Join {
            reference: Some(15),
            code: "K7QX3M".into(),
            name: "Ada Lovelace ✓".into(),
        },
        ClientMsg::Admin {
            reference: Some(16),
            token: "secret".into(),
        },
        ClientMsg::WorkshopCreate {
            reference: Some(17),
            lesson: "uts".into(),
            title: None,
        },
        ClientMsg::WorkshopCreate {
            reference: Some(18),
            lesson: "pid".into(),
            title: Some("Friday".into()),
        },
        ClientMsg::WorkshopOpen {
            reference: None,
            id: "3f2a".into(),
        },
        ClientMsg::WorkshopEnd {
            reference: Some(19),
            id: "3f2a".into(),
        },
        ClientMsg::Spectate {
            reference: Some(20),
            workshop: "3f2a".into(),
            attendee: "a1".into(),
            handle: 3,
        },
        ClientMsg::Unspectate {
            reference: None,
            handle: 9,
        },
    ]
}

fn lesson_state() -> LessonState {
    LessonState {
        lesson: LessonInfo {
            name: "uts".into(),
            title: "UTS".into(),
            intro_html: "<p>hi</p>".into(),
            steps: vec![StepInfo {
                title: "Rename".into(),
                html: "<p>do</p>".into(),
                hint_html: String::new(),
                check: "alpha.hostname == \"gamma\"".into(),
            }],
        },
        progress: Progress {
            passed: vec![false],
            solved: vec![true],
            current: 0,
            last_check: Some("alpha.hostname is \"alpha\"".into()),
        },
    }
}

fn workshop_view() -> WorkshopView {
    WorkshopView {
        brief: brief(),
        join_path: "/?join=K7QX3M".into(),
        steps: vec!["Rename".into()],
        attendees: vec![AttendeeView {
            id: "a1".into(),
            name: "Ada".into(),
            connected: true,
            progress: Progress::new(1),
            containers: vec![AttendeeContainer {
                name: "alpha".into(),
                hostname: "gamma".into(),
                handles: vec![1, 4],
            }],
        }],
        ended: false,
    }
}

fn brief() -> WorkshopBrief {
    WorkshopBrief {
        id: "3f2a".into(),
        code: "K7QX3M".into(),
        title: "Friday".into(),
        lesson: "uts".into(),
    }
}

fn every_server_msg() -> Vec<ServerMsg> {
    vec![
        ServerMsg::Hello {
            version: PROTOCOL_VERSION,
            limits: limits(),
            containers: vec![info()],
            lesson: None,
            workshop: None,
        },
        ServerMsg::Created {
            reference: Some(1),
            container: info(),
            handle: 1,
        },
        ServerMsg::Hello {
            version: PROTOCOL_VERSION,
            limits: limits(),
            containers: vec![],
            lesson: Some(lesson_state()),
            workshop: Some(Joined {
                workshop: brief(),
                name: "Ada".into(),
            }),
        },
        ServerMsg::Lessons {
            reference: Some(13),
            lessons: vec![LessonSummary {
                name: "uts".into(),
                title: "UTS".into(),
                summary: "names".into(),
                steps: 3,
            }],
        },
        ServerMsg::Lesson {
            reference: Some(13),
            state: lesson_state(),
        },
        ServerMsg::Progress {
            progress: lesson_state().progress,
        },
        ServerMsg::Joined {
            reference: None,
            joined: Joined {
                workshop: brief(),
                name: "Ada".into(),
            },
        },
        ServerMsg::Workshops {
            reference: Some(16),
            workshops: vec![workshop_view()],
        },
        ServerMsg::Workshop {
            reference: None,
            workshop: workshop_view(),
        },
        ServerMsg::Spectating {
            reference: Some(20),
            handle: 9,
            workshop: "3f2a".into(),
            attendee: "a1".into(),
            name: "Ada".into(),
            container: "alpha".into(),
        },
        ServerMsg::Exited {
            handle: 1,
            container: "3f2a9c01b7de".into(),
            code: 137,
            signal: Some(9),
            oom_killed: true,
        },
        ServerMsg::error(
            Some(7),
            codes::UNKNOWN_CONTAINER,
            "no container named ghost",
        ),
        ServerMsg::Error {
            reference: Some(8),
            code: "invalid_hostname".into(),
            message: "bad".into(),
            field: Some("hostname".into()),
        },
        ServerMsg::State {
            reference: None,
            containers: vec![info()],
        },
        ServerMsg::View {
            target: ViewTarget::Container("alpha".into()),
            update: Box::new(full_view()),
        },
        ServerMsg::Images {
            reference: Some(7),
            images: vec![image()],
        },
        ServerMsg::BuildLog {
            reference: Some(8),
            text: "STEP 1/2: FROM busybox\n".into(),
        },
        ServerMsg::BuildLayer {
            reference: Some(8),
            index: 1,
            layer: image().layers[0].clone(),
        },
        ServerMsg::Built {
            reference: Some(8),
            image: image(),
        },
        ServerMsg::Diff {
            reference: None,
            container: "alpha".into(),
            changes: vec![ChangeInfo {
                kind: "A".into(),
                path: "/hi".into(),
            }],
        },
        ServerMsg::View {
            target: ViewTarget::Host,
            update: Box::new(ViewUpdate {
                uts: Some(view::UtsView {
                    hostname: "lab".into(),
                    domainname: "(none)".into(),
                }),
                ..ViewUpdate::default()
            }),
        },
    ]
}

fn image() -> ImageInfo {
    ImageInfo {
        name: "hello".into(),
        id: format!("sha256:{}", "a".repeat(64)),
        created: "2026-11-29T10:00:00Z".into(),
        layers: vec![LayerInfo {
            digest: format!("sha256:{}", "b".repeat(64)),
            diff_id: format!("sha256:{}", "c".repeat(64)),
            size: 1234,
            created_by: Some("RUN echo hi > /hi".into()),
        }],
        entrypoint: None,
        cmd: Some(vec!["sh".into()]),
        env: vec!["PATH=/bin".into()],
        workdir: None,
        user: None,
    }
}

fn full_view() -> ViewUpdate {
    use view::*;
    ViewUpdate {
        namespaces: Some(vec![NsView {
            kind: "uts".into(),
            inode: 4026532001,
            shared_with: vec!["beta".into()],
        }]),
        processes: Some(ProcessesView {
            list: vec![ProcessView {
                pid: 4242,
                pid_inside: 1,
                ppid: 4240,
                uid_inside: 0,
                uid_host: 100000,
                cmd: "sh".into(),
                container: None,
            }],
            host_total: None,
        }),
        uts: Some(UtsView {
            hostname: "alpha".into(),
            domainname: "(none)".into(),
        }),
        interfaces: Some(vec![InterfaceView {
            name: "lo".into(),
            index: 1,
            up: true,
            running: true,
            addresses: vec!["127.0.0.1/8".into(), "::1/128".into()],
            peer: None,
            kind: None,
        }]),
        mounts: Some(MountsView {
            count: 21,
            root_fstype: "overlay".into(),
            root_layers: vec!["/var/lib/isolab/images/busybox/rootfs".into()],
            root_upper: Some("/run/isolab/c/upper".into()),
            notable: vec![MountView {
                target: "/proc".into(),
                fstype: "proc".into(),
                read_only: false,
            }],
            masked: vec!["/proc/kcore".into()],
            read_only: vec!["/proc/sys".into()],
        }),
        id_maps: Some(IdMapsView {
            uid: vec![IdRange {
                inside: 0,
                outside: 100000,
                count: 65536,
            }],
            gid: vec![],
        }),
        cgroup: Some(CgroupView {
            version: "v1".into(),
            memory_current: 1 << 20,
            memory_peak: Some(2 << 20),
            memory_limit: Some(64 << 20),
            oom_kills: 0,
            cpu_usage_usec: 1234,
            cpu_rate: 0.25,
            cpu_limit: Some(0.5),
            cpu_throttled_usec: 0,
            pids_current: 1,
            pids_limit: Some(128),
        }),
        kernel: Some(KernelView {
            release: "6.1.0".into(),
            shared_with_host: true,
        }),
        network: Some(NetworkView {
            name: "isolab-3f2a".into(),
            bridge: "isl-3f2a".into(),
            up: true,
            subnet: "10.88.0.0/24".into(),
            gateway: "10.88.0.1".into(),
            egress: false,
            attachments: vec![AttachmentView {
                container: "alpha".into(),
                address: "10.88.0.2".into(),
                host_veth: Some("veth1234".into()),
                ports: vec!["8080:80".into()],
            }],
        }),
    }
}

#[test]
fn a_view_is_flat_and_names_its_target() {
    let msg = ServerMsg::View {
        target: ViewTarget::Container("alpha".into()),
        update: Box::new(ViewUpdate {
            uts: Some(view::UtsView {
                hostname: "gamma".into(),
                domainname: "(none)".into(),
            }),
            ..ViewUpdate::default()
        }),
    };
    let v: Value = serde_json::to_value(&msg).unwrap();
    assert_eq!(
        v,
        json!({"type": "view", "target": {"kind": "container", "name": "alpha"},
               "uts": {"hostname": "gamma", "domainname": "(none)"}})
    );
    let host: ClientMsg =
        serde_json::from_str(r#"{"type":"watch","target":{"kind":"host"}}"#).unwrap();
    assert_eq!(
        host,
        ClientMsg::Watch {
            reference: None,
            target: ViewTarget::Host
        }
    );
    assert!(ViewUpdate::default().is_empty());
    assert!(!full_view().is_empty());
}

#[test]
fn every_client_message_round_trips() {
    for msg in every_client_msg() {
        let text = serde_json::to_string(&msg).unwrap();
        let back: ClientMsg = serde_json::from_str(&text).unwrap();
        assert_eq!(back, msg, "{text}");
    }
}

#[test]
fn every_server_message_round_trips() {
    for msg in every_server_msg() {
        let text = serde_json::to_string(&msg).unwrap();
        let back: ServerMsg = serde_json::from_str(&text).unwrap();
        assert_eq!(back, msg, "{text}");
    }
}

#[test]
fn messages_are_tagged_by_type_and_ref_is_spelled_ref() {
    let v: Value = serde_json::to_value(ClientMsg::List { reference: Some(9) }).unwrap();
    assert_eq!(v, json!({"type": "list", "ref": 9}));
    let v: Value = serde_json::to_value(ClientMsg::List { reference: None }).unwrap();
    assert_eq!(v, json!({"type": "list"}), "no ref, no field");
    let v: Value = serde_json::to_value(ServerMsg::error(None, codes::BAD_MESSAGE, "x")).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "code": "bad_message", "message": "x"})
    );
}

#[test]
fn what_a_page_writes_by_hand_parses() {
    let msg: ClientMsg = serde_json::from_str(
        r#"{"type":"create","ref":1,"spec":{"image":"busybox","cmd":["sh"],"tty":true,"memory":"64m"}}"#,
    )
    .unwrap();
    let ClientMsg::Create { reference, spec } = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(*reference, Some(1));
    assert_eq!(spec.memory.map(|m| m.bytes()), Some(64 << 20));
    assert_eq!(msg.reference(), Some(1));
    let exec: ClientMsg = serde_json::from_str(r#"{"type":"exec","container":"alpha"}"#).unwrap();
    assert_eq!(
        exec,
        ClientMsg::Exec {
            reference: None,
            container: "alpha".into(),
            cmd: vec![],
            env: vec![]
        }
    );
}

#[test]
fn unknown_types_and_missing_fields_are_refused() {
    assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"explode"}"#).is_err());
    assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"resize","handle":1}"#).is_err());
    assert!(serde_json::from_str::<ClientMsg>(r#"{"handle":1}"#).is_err());
    assert!(serde_json::from_str::<ClientMsg>("not json").is_err());
}

#[test]
fn move_interface_s_kind_is_optional_and_veth_by_default() {
    let dummy = ClientMsg::MoveInterface {
        reference: Some(3),
        interface: "dummy0".into(),
        from: "alpha".into(),
        to: "beta".into(),
        kind: Some(InterfaceKind::Dummy),
    };
    let v: Value = serde_json::to_value(&dummy).unwrap();
    assert_eq!(
        v,
        json!({"type": "move_interface", "ref": 3, "interface": "dummy0",
               "from": "alpha", "to": "beta", "kind": "dummy"})
    );
    assert_eq!(serde_json::from_value::<ClientMsg>(v).unwrap(), dummy);
    let veth: ClientMsg = serde_json::from_str(
        r#"{"type":"move_interface","interface":"cable0","from":"a","to":"b","kind":"veth"}"#,
    )
    .unwrap();
    assert!(matches!(
        veth,
        ClientMsg::MoveInterface {
            kind: Some(InterfaceKind::Veth),
            ..
        }
    ));
    // A version 4 client's request (no kind) still parses, and is written back without one.
    let old = r#"{"type":"move_interface","interface":"cable0","from":"a","to":"b"}"#;
    let msg: ClientMsg = serde_json::from_str(old).unwrap();
    let ClientMsg::MoveInterface { kind, .. } = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(*kind, None);
    assert_eq!(kind.unwrap_or_default(), InterfaceKind::Veth);
    assert_eq!(serde_json::to_value(&msg).unwrap().get("kind"), None);
    // A kind isolab does not make is a malformed request.
    let bond = r#"{"type":"move_interface","interface":"b0","from":"a","to":"b","kind":"bond"}"#;
    assert!(serde_json::from_str::<ClientMsg>(bond).is_err());
    // The command line's spelling is the wire's.
    for kind in InterfaceKind::ALL {
        assert_eq!(kind.to_string().parse::<InterfaceKind>(), Ok(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    assert!("Dummy".parse::<InterfaceKind>().is_err());
}

#[test]
fn frames_round_trip_with_a_big_endian_handle() {
    let bytes = Frame::new(FrameKind::Output, 0x0102_0304, b"hi").encode();
    assert_eq!(bytes, [1, 1, 2, 3, 4, b'h', b'i']);
    let frame = Frame::decode(&bytes).unwrap();
    assert_eq!(frame, Frame::new(FrameKind::Output, 0x0102_0304, b"hi"));
    for kind in [FrameKind::Output, FrameKind::Input, FrameKind::Stderr] {
        let bytes = Frame::new(kind, 7, &[]).encode();
        assert_eq!(Frame::decode(&bytes).unwrap().kind, kind);
    }
}

#[test]
fn a_split_multibyte_character_survives_two_frames() {
    // "é" is 0xC3 0xA9: split across two frames, the bytes are passed on untouched.
    let first = Frame::new(FrameKind::Output, 1, &[b'a', 0xC3]).encode();
    let second = Frame::new(FrameKind::Output, 1, &[0xA9]).encode();
    let mut joined = Frame::decode(&first).unwrap().data.to_vec();
    joined.extend_from_slice(Frame::decode(&second).unwrap().data);
    assert_eq!(String::from_utf8(joined).unwrap(), "aé");
}

#[test]
fn bad_frames_are_refused() {
    assert_eq!(Frame::decode(&[1, 0, 0]), Err(FrameError::TooShort(3)));
    assert_eq!(
        Frame::decode(&[9, 0, 0, 0, 1]),
        Err(FrameError::UnknownKind(9))
    );
}

#[test]
fn types_lists_every_client_message() {
    let mut seen: Vec<String> = every_client_msg()
        .iter()
        .map(|m| {
            serde_json::to_value(m).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    seen.sort();
    seen.dedup();
    let mut types: Vec<String> = ClientMsg::TYPES.iter().map(|t| t.to_string()).collect();
    types.sort();
    assert_eq!(seen, types);
}
