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
    ]
}

fn every_server_msg() -> Vec<ServerMsg> {
    vec![
        ServerMsg::Hello {
            version: PROTOCOL_VERSION,
            limits: limits(),
            containers: vec![info()],
        },
        ServerMsg::Created {
            reference: Some(1),
            container: info(),
            handle: 1,
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
    ]
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
            cmd: vec![]
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
