//! The reducer's part of images, builds and diffs (the model itself: `images/tests.rs`).

use isolab_shared::protocol::{ChangeInfo, ContainerInfo, ImageInfo, LayerInfo, Limits, ServerMsg};

use super::*;
use crate::images::{BuildPhase, EXAMPLE_DOCKERFILE, LOG_CAP};

fn layer(n: u8, created_by: &str) -> LayerInfo {
    LayerInfo {
        digest: format!("sha256:{n:064x}"),
        diff_id: format!("sha256:{:064x}", u32::from(n) + 1000),
        size: 100 * u64::from(n),
        created_by: Some(created_by.to_string()),
    }
}

fn image(name: &str, layers: Vec<LayerInfo>) -> ImageInfo {
    ImageInfo {
        name: name.to_string(),
        id: format!("sha256:{name}-{}", layers.len()),
        created: "2025-11-29T09:00:00Z".to_string(),
        layers,
        entrypoint: None,
        cmd: Some(vec!["cat".into(), "/two".into()]),
        env: Vec::new(),
        workdir: None,
        user: None,
    }
}

fn busybox() -> ImageInfo {
    image("busybox", vec![layer(1, "busybox-static")])
}

fn open() -> AppState {
    let mut s = AppState::default();
    s.apply(Action::Received(ServerMsg::Hello {
        version: 3,
        limits: Limits::default(),
        containers: vec![ContainerInfo {
            runtime: String::new(),
            id: "a1".into(),
            name: "alpha".into(),
            image: "busybox".into(),
            hostname: "alpha".into(),
            cmd: vec!["sh".into()],
            handles: vec![1],
            address: None,
            ports: Vec::new(),
        }],
        lesson: None,
        workshop: None,
    }));
    s
}

fn received(s: &mut AppState, msg: ServerMsg) {
    s.apply(Action::Received(msg));
}

fn build(s: &mut AppState, reference: u64, name: &str) {
    s.apply(Action::Sent {
        reference,
        origin: Origin::Build {
            name: name.into(),
            from: crate::images::from_image(EXAMPLE_DOCKERFILE).map(str::to_string),
        },
    });
}

fn build_layer(s: &mut AppState, reference: u64, index: u32, layer: LayerInfo) {
    received(
        s,
        ServerMsg::BuildLayer {
            reference: Some(reference),
            index,
            layer,
        },
    );
}

fn layer_names(s: &AppState) -> Vec<String> {
    let build = s.images.build.as_ref().unwrap();
    build
        .stack()
        .into_iter()
        .map(|l| l.created_by.unwrap())
        .collect()
}

#[test]
fn the_image_list_answers_its_ref_and_may_come_unasked() {
    let mut s = open();
    assert_eq!(s.images.selected, "busybox");
    s.apply(Action::Sent {
        reference: 3,
        origin: Origin::Images,
    });
    received(
        &mut s,
        ServerMsg::Images {
            reference: Some(3),
            images: vec![busybox()],
        },
    );
    assert!(s.pending.is_empty());
    assert_eq!(s.images.list, vec![busybox()]);
    assert_eq!(s.images.selected(), Some(&busybox()));

    // After another tab's build, unprompted: the list is replaced, the choice kept.
    let other = image("other", vec![layer(1, "busybox-static"), layer(2, "RUN x")]);
    received(
        &mut s,
        ServerMsg::Images {
            reference: None,
            images: vec![busybox(), other.clone()],
        },
    );
    assert_eq!(s.images.list.len(), 2);
    assert_eq!(s.images.selected, "busybox");
    s.apply(Action::SelectImage("other".into()));
    assert_eq!(s.images.selected(), Some(&other));
}

#[test]
fn a_refused_images_request_is_a_notice() {
    let mut s = open();
    s.apply(Action::Sent {
        reference: 3,
        origin: Origin::Images,
    });
    received(
        &mut s,
        ServerMsg::Error {
            reference: Some(3),
            code: "unknown_type".into(),
            message: "no such type".into(),
            field: None,
        },
    );
    assert!(s.pending.is_empty());
    assert_eq!(
        s.notice.as_deref(),
        Some("the images could not be listed: unknown_type: no such type")
    );
}

#[test]
fn a_build_grows_its_stack_in_order_streams_its_log_and_ends_with_its_image() {
    let mut s = open();
    received(
        &mut s,
        ServerMsg::Images {
            reference: None,
            images: vec![busybox()],
        },
    );
    build(&mut s, 7, "layered");
    assert!(s.images.building());
    assert_eq!(s.images.shown().source, "build");
    let b = s.images.build.as_ref().unwrap();
    assert_eq!(b.base, vec![layer(1, "").digest], "the FROM image's layers");

    received(
        &mut s,
        ServerMsg::BuildLog {
            reference: Some(7),
            text: "Step 1/5 : FROM busybox\nStep 2/5 : RUN ec".into(),
        },
    );
    build_layer(&mut s, 7, 0, layer(1, "busybox-static"));
    received(
        &mut s,
        ServerMsg::BuildLog {
            reference: Some(7),
            text: "ho one > /one\n".into(),
        },
    );
    build_layer(&mut s, 7, 1, layer(2, "RUN echo one > /one"));
    build_layer(
        &mut s,
        7,
        2,
        layer(3, "RUN echo two > /two && echo three > /three"),
    );
    // Messages of another ref are not this build's.
    build_layer(&mut s, 99, 3, layer(9, "RUN elsewhere"));
    received(
        &mut s,
        ServerMsg::BuildLog {
            reference: Some(99),
            text: "noise".into(),
        },
    );
    assert_eq!(
        layer_names(&s),
        [
            "busybox-static",
            "RUN echo one > /one",
            "RUN echo two > /two && echo three > /three"
        ]
    );
    let b = s.images.build.as_ref().unwrap();
    assert_eq!(
        b.log,
        "Step 1/5 : FROM busybox\nStep 2/5 : RUN echo one > /one\n"
    );
    let rows = s.images.shown().rows;
    let marks: Vec<_> = rows.iter().map(|r| (r.index, r.new, r.latest)).collect();
    assert_eq!(
        marks,
        [(2, true, true), (1, true, false), (0, false, false)]
    );

    build_layer(&mut s, 7, 3, layer(4, "RUN rm /one"));
    let made = image(
        "layered",
        vec![
            layer(1, "busybox-static"),
            layer(2, "RUN echo one > /one"),
            layer(3, "RUN echo two > /two && echo three > /three"),
            layer(4, "RUN rm /one"),
        ],
    );
    received(
        &mut s,
        ServerMsg::Built {
            reference: Some(7),
            image: made.clone(),
        },
    );
    assert!(s.pending.is_empty(), "built answers the build");
    let b = s.images.build.as_ref().unwrap();
    assert_eq!(b.phase, BuildPhase::Done(made.id.clone()));
    assert_eq!(b.layers.len(), 4);
    assert_eq!(s.images.selected, "layered", "the new image is picked");
    assert_eq!(s.images.list, vec![busybox(), made.clone()], "and listed");
    let shown = s.images.shown();
    assert_eq!(shown.source, "image");
    assert_eq!(shown.rows.iter().filter(|r| r.new).count(), 3);

    // The server's list after the build says the same: nothing changes.
    let before = s.clone();
    received(
        &mut s,
        ServerMsg::Images {
            reference: None,
            images: vec![busybox(), made],
        },
    );
    assert_eq!(s, before);
}

#[test]
fn a_new_build_replaces_the_last_ones_stack_and_log() {
    let mut s = open();
    build(&mut s, 1, "first");
    build_layer(&mut s, 1, 0, layer(1, "busybox-static"));
    build_layer(&mut s, 1, 1, layer(2, "RUN a"));
    received(
        &mut s,
        ServerMsg::BuildLog {
            reference: Some(1),
            text: "first log\n".into(),
        },
    );
    received(
        &mut s,
        ServerMsg::Built {
            reference: Some(1),
            image: image("first", vec![layer(1, "busybox-static"), layer(2, "RUN a")]),
        },
    );

    build(&mut s, 2, "second");
    let b = s.images.build.as_ref().unwrap();
    assert!(b.layers.is_empty() && b.log.is_empty());
    assert_eq!((b.reference, b.name.as_str()), (2, "second"));
    build_layer(&mut s, 2, 0, layer(1, "busybox-static"));
    build_layer(&mut s, 2, 1, layer(5, "RUN b"));
    assert_eq!(layer_names(&s), ["busybox-static", "RUN b"]);
    // A late message of the first build changes nothing.
    build_layer(&mut s, 1, 2, layer(6, "RUN late"));
    assert_eq!(layer_names(&s), ["busybox-static", "RUN b"]);
}

#[test]
fn a_long_build_log_keeps_its_tail() {
    let mut s = open();
    build(&mut s, 1, "chatty");
    let chunk = format!("{}\n", "y".repeat(1023));
    for _ in 0..100 {
        received(
            &mut s,
            ServerMsg::BuildLog {
                reference: Some(1),
                text: chunk.clone(),
            },
        );
    }
    received(
        &mut s,
        ServerMsg::BuildLog {
            reference: Some(1),
            text: "the end".into(),
        },
    );
    let b = s.images.build.as_ref().unwrap();
    assert!(b.log.len() <= LOG_CAP);
    assert!(b.log_trimmed);
    assert!(b.log.ends_with("y\nthe end"));
    assert!(b.log.starts_with('y'));
}

#[test]
fn a_failed_build_keeps_its_partial_stack_until_another_image_is_picked() {
    let mut s = open();
    build(&mut s, 4, "broken");
    build_layer(&mut s, 4, 0, layer(1, "busybox-static"));
    received(
        &mut s,
        ServerMsg::Error {
            reference: Some(4),
            code: "build_failed".into(),
            message: "RUN false: exit status 1".into(),
            field: None,
        },
    );
    assert!(s.pending.is_empty());
    assert!(s.notice.is_none(), "the build panel shows it");
    let b = s.images.build.as_ref().unwrap();
    assert!(matches!(&b.phase, BuildPhase::Failed(p) if p.code == "build_failed"));
    let shown = s.images.shown();
    assert_eq!(shown.source, "build");
    assert_eq!(shown.title, "broken: the build stopped");
    assert_eq!(shown.rows.len(), 1);
    assert!(!shown.rows[0].latest);

    s.apply(Action::SelectImage("busybox".into()));
    assert_eq!(s.images.shown().source, "image");
    assert!(s.images.build.is_some(), "its log stays in the build panel");
}

#[test]
fn losing_the_connection_ends_the_followed_build() {
    let mut s = open();
    build(&mut s, 4, "slow");
    s.apply(Action::Closed);
    let b = s.images.build.as_ref().unwrap();
    assert!(matches!(&b.phase, BuildPhase::Failed(p) if p.code == "connection_lost"));
    assert!(!s.images.building());

    // The same on a new hello (a reload while building).
    build(&mut s, 5, "slow");
    s.apply(Action::Received(ServerMsg::Hello {
        version: 3,
        limits: Limits::default(),
        containers: vec![],
        lesson: None,
        workshop: None,
    }));
    assert!(!s.images.building());
}

fn change(kind: &str, path: &str) -> ChangeInfo {
    ChangeInfo {
        kind: kind.into(),
        path: path.into(),
    }
}

#[test]
fn a_diff_lands_under_the_card_that_asked_and_can_be_hidden() {
    let mut s = open();
    s.apply(Action::Sent {
        reference: 9,
        origin: Origin::Diff("a1".into()),
    });
    assert!(s.cards[0].diffing);
    assert!(!s.cards[0].busy, "a diff does not block + shell or remove");
    let changes = vec![change("A", "/new"), change("D", "/etc/hosts")];
    received(
        &mut s,
        ServerMsg::Diff {
            reference: Some(9),
            container: "alpha".into(),
            changes: changes.clone(),
        },
    );
    assert!(s.pending.is_empty());
    assert!(!s.cards[0].diffing);
    assert_eq!(s.cards[0].diff.as_ref(), Some(&changes));

    // One without a ref (or with a ref no longer pending) finds its card by name.
    received(
        &mut s,
        ServerMsg::Diff {
            reference: None,
            container: "alpha".into(),
            changes: vec![],
        },
    );
    assert_eq!(s.cards[0].diff.as_deref(), Some(&[][..]));
    s.apply(Action::HideDiff("a1".into()));
    assert_eq!(s.cards[0].diff, None);
    // A diff for a container that is not here changes nothing.
    let before = s.clone();
    received(
        &mut s,
        ServerMsg::Diff {
            reference: None,
            container: "ghost".into(),
            changes: changes.clone(),
        },
    );
    assert_eq!(s, before);
}

#[test]
fn diffs_are_kept_per_container_and_a_refused_one_shows_on_its_card() {
    let mut s = open();
    s.apply(Action::Sent {
        reference: 1,
        origin: Origin::Create,
    });
    s.apply(Action::Received(ServerMsg::Created {
        reference: Some(1),
        handle: 2,
        container: ContainerInfo {
            runtime: String::new(),
            id: "b2".into(),
            name: "beta".into(),
            image: "layered".into(),
            hostname: "beta".into(),
            cmd: vec![],
            handles: vec![2],
            address: None,
            ports: Vec::new(),
        },
    }));
    assert_eq!(s.panes[1].title, "beta · (the image's command)");
    for (reference, id) in [(2, "a1"), (3, "b2")] {
        s.apply(Action::Sent {
            reference,
            origin: Origin::Diff(id.into()),
        });
    }
    received(
        &mut s,
        ServerMsg::Diff {
            reference: Some(3),
            container: "beta".into(),
            changes: vec![change("C", "/etc")],
        },
    );
    received(
        &mut s,
        ServerMsg::Error {
            reference: Some(2),
            code: "runtime".into(),
            message: "diff: upper dir gone".into(),
            field: None,
        },
    );
    let alpha = s.card("a1").unwrap();
    assert!(!alpha.diffing && alpha.diff.is_none());
    assert_eq!(alpha.error.as_ref().unwrap().code, "runtime");
    let beta = s.card("b2").unwrap();
    assert_eq!(beta.diff.as_deref(), Some(&[change("C", "/etc")][..]));
    assert!(s.pending.is_empty());

    // Lost connection: nothing is in flight any more.
    s.apply(Action::Sent {
        reference: 4,
        origin: Origin::Diff("b2".into()),
    });
    s.apply(Action::Closed);
    assert!(!s.card("b2").unwrap().diffing);
}

#[test]
fn a_resize_that_crossed_a_short_commands_end_is_no_notice() {
    let mut s = open();
    let unknown = |handle: u32| {
        Action::Received(ServerMsg::Error {
            reference: None,
            code: "unknown_handle".into(),
            message: format!("no terminal {handle}"),
            field: None,
        })
    };
    // Handle 1 is still running here: the error is news.
    s.apply(unknown(1));
    assert_eq!(s.notice.as_deref(), Some("unknown_handle: no terminal 1"));
    s.apply(Action::ClearNotice);
    s.apply(Action::Received(ServerMsg::Exited {
        handle: 1,
        container: "a1".into(),
        code: 0,
        signal: None,
        oom_killed: false,
    }));
    s.apply(unknown(1));
    assert_eq!(s.notice, None);
    // A handle the page never had is still worth saying.
    s.apply(unknown(8));
    assert_eq!(s.notice.as_deref(), Some("unknown_handle: no terminal 8"));
}
