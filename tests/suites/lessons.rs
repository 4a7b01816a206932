//! Lessons and workshops through a real server: every built-in lesson's steps fail their check,
//! pass it after their own solution, in order; a workshop joined by code, an attendee's progress
//! and terminal seen by the trainer read-only, and ending it removes everything. Needs root.

use std::time::{Duration, Instant};

use isolab_shared::protocol::{codes, ClientMsg, Progress, ServerMsg, WorkshopView};
use isolab_tests::server::{Client, Server};
use isolab_tests::{stdout, Isolab};

const BIN: &str = env!("CARGO_BIN_EXE_isolab");
const ADMIN: &str = "trainer-token-1234";
/// A step's check runs about once a second; a solution may build an image.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// The next `progress`, failing on any error; other messages are skipped.
async fn next_progress(c: &mut Client, what: &str) -> Progress {
    loop {
        match c.next_msg().await {
            ServerMsg::Progress { progress } => return progress,
            ServerMsg::Error { code, message, .. } if code != codes::UNKNOWN_HANDLE => {
                panic!("{what}: error {code}: {message}")
            }
            _ => {}
        }
    }
}

/// Wait for a progress that satisfies `f` (or fail after the step timeout).
async fn progress_until(c: &mut Client, what: &str, f: impl Fn(&Progress) -> bool) -> Progress {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "{what}: timed out");
        let p = next_progress(c, what).await;
        if f(&p) {
            return p;
        }
    }
}

/// Start a lesson in a fresh session and walk it: each step's check must fail first, then pass
/// after its solution. Returns the failures in words.
async fn walk(url: &str, lesson: &str) -> Result<(), String> {
    let mut c = Client::connect(url).await;
    c.send(&ClientMsg::LessonStart {
        reference: Some(1),
        lesson: lesson.into(),
    })
    .await;
    let steps = loop {
        match c.next_msg().await {
            ServerMsg::Lesson { state, .. } => break state.lesson.steps,
            ServerMsg::Error { message, .. } => return Err(format!("start: {message}")),
            _ => {}
        }
    };
    for (i, step) in steps.iter().enumerate() {
        let what = format!("{lesson} step {} ({})", i + 1, step.title);
        // The check fails before the solution: it has run for this step and said why.
        let before = progress_until(&mut c, &what, |p| {
            p.passed.get(i) == Some(&true) || (p.current as usize == i && p.last_check.is_some())
        })
        .await;
        if before.passed[i] {
            return Err(format!("{what}: passed before its solution"));
        }
        c.send(&ClientMsg::LessonSolve {
            reference: Some(10 + i as u64),
            step: i as u32,
        })
        .await;
        let after = progress_until(&mut c, &what, |p| p.passed[i]).await;
        if !after.solved[i] {
            return Err(format!("{what}: not marked as solved by its solution"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_lesson_fails_before_and_passes_after_its_solution() {
    let isolab = Isolab::with_own_store(BIN);
    let server = Server::start(&isolab);
    let mut c = Client::connect(&server.url()).await;
    c.send(&ClientMsg::Lessons { reference: Some(1) }).await;
    let lessons = loop {
        if let ServerMsg::Lessons { lessons, .. } = c.next_msg().await {
            break lessons;
        }
    };
    drop(c);
    // ISOLAB_LESSON=NAME walks only that lesson (while writing one).
    let only = std::env::var("ISOLAB_LESSON").ok();
    assert!(
        only.is_some() || lessons.len() >= 14,
        "{} lessons",
        lessons.len()
    );
    let mut failures = Vec::new();
    for l in &lessons {
        if only.as_ref().is_some_and(|o| *o != l.name) {
            continue;
        }
        if let Err(e) = walk(&server.url(), &l.name).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    drop(server);
    isolab.assert_no_leaks();
}

/// The next `workshop` view (for the trainer), failing on errors.
async fn next_workshop(c: &mut Client) -> WorkshopView {
    loop {
        match c.next_msg().await {
            ServerMsg::Workshop { workshop, .. } => return workshop,
            ServerMsg::Error { code, message, .. } => panic!("trainer: {code}: {message}"),
            _ => {}
        }
    }
}

async fn expect_error(c: &mut Client, want: &str) -> String {
    loop {
        if let ServerMsg::Error { code, message, .. } = c.next_msg().await {
            assert_eq!(code, want, "{message}");
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workshop_joined_by_code_watched_read_only_and_ended() {
    let isolab = Isolab::new(BIN);
    let server = Server::start_with(&isolab, &["--grace", "1", "--admin-token", ADMIN]);
    let url = server.url();
    let mut trainer = Client::connect(&url).await;
    // Not a trainer yet; then a wrong token.
    trainer
        .send(&ClientMsg::WorkshopCreate {
            reference: Some(1),
            lesson: "uts".into(),
            title: None,
        })
        .await;
    expect_error(&mut trainer, codes::FORBIDDEN).await;
    trainer
        .send(&ClientMsg::Admin {
            reference: Some(2),
            token: "trainer-token-1235".into(),
        })
        .await;
    expect_error(&mut trainer, codes::FORBIDDEN).await;
    trainer
        .send(&ClientMsg::Admin {
            reference: Some(3),
            token: ADMIN.into(),
        })
        .await;
    loop {
        if let ServerMsg::Workshops { workshops, .. } = trainer.next_msg().await {
            assert!(workshops.is_empty());
            break;
        }
    }
    trainer
        .send(&ClientMsg::WorkshopCreate {
            reference: Some(4),
            lesson: "uts".into(),
            title: Some("Friday".into()),
        })
        .await;
    let w = next_workshop(&mut trainer).await;
    assert_eq!(w.brief.title, "Friday");
    // The link names this node, for a balancer in front of several (docker/nginx).
    let node = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(w.join_path, format!("/?join={}&node={node}", w.brief.code));
    let id = w.brief.id.clone();

    // An attendee: a wrong code, then the right one in lower case.
    let mut ada = Client::connect(&url).await;
    ada.send(&ClientMsg::Join {
        reference: Some(1),
        code: "ZZZZZZ".into(),
        name: "Ada".into(),
    })
    .await;
    expect_error(&mut ada, codes::UNKNOWN_WORKSHOP).await;
    ada.send(&ClientMsg::Join {
        reference: Some(2),
        code: w.brief.code.to_lowercase(),
        name: "Ada".into(),
    })
    .await;
    let mut alpha = None;
    while alpha.is_none() {
        match ada.next_msg().await {
            ServerMsg::Created {
                handle, container, ..
            } if container.name == "alpha" => alpha = Some(handle),
            ServerMsg::Error { message, .. } => panic!("join: {message}"),
            _ => {}
        }
    }
    let alpha = alpha.unwrap();
    // A second attendee may not take the same name.
    let mut copycat = Client::connect(&url).await;
    copycat
        .send(&ClientMsg::Join {
            reference: Some(1),
            code: w.brief.code.clone(),
            name: "Ada".into(),
        })
        .await;
    expect_error(&mut copycat, codes::BAD_NAME).await;
    drop(copycat);

    // The trainer sees Ada, her containers, then her first step passing.
    let mut seen;
    loop {
        seen = next_workshop(&mut trainer).await;
        if seen
            .attendees
            .first()
            .is_some_and(|a| a.containers.len() == 2)
        {
            break;
        }
    }
    let attendee = seen.attendees[0].id.clone();
    assert_eq!(seen.attendees[0].name, "Ada");
    ada.input(alpha, "readlink /proc/self/ns/uts > /tmp/uts\n")
        .await;
    loop {
        let v = next_workshop(&mut trainer).await;
        if v.attendees[0].progress.passed.first() == Some(&true) {
            assert!(
                !v.attendees[0].progress.solved[0],
                "done by hand, not solved"
            );
            break;
        }
    }

    // The trainer watches alpha's terminal: scrollback first, then what Ada types.
    trainer
        .send(&ClientMsg::Spectate {
            reference: Some(5),
            workshop: id.clone(),
            attendee: attendee.clone(),
            handle: alpha,
        })
        .await;
    let watched = loop {
        match trainer.next_msg().await {
            ServerMsg::Spectating {
                handle,
                name,
                container,
                ..
            } => {
                assert_eq!((name.as_str(), container.as_str()), ("Ada", "alpha"));
                break handle;
            }
            ServerMsg::Error { message, .. } => panic!("spectate: {message}"),
            _ => {}
        }
    };
    trainer.output_until(watched, "/tmp/uts").await;
    ada.input(alpha, "echo typed-by-$((6*7))\n").await;
    trainer.output_until(watched, "typed-by-42").await;
    // Typing into the watched terminal does nothing but an error.
    trainer
        .input(watched, "echo from-the-trainer-$((7*7))\n")
        .await;
    expect_error(&mut trainer, codes::READ_ONLY).await;
    ada.input(alpha, "echo still-$((2*3))\n").await;
    let text = ada.output_until(alpha, "still-6").await;
    assert!(!text.contains("from-the-trainer"), "{text}");
    assert!(!text.contains("49"), "{text}");

    // Ending the workshop ends Ada's session and removes her containers.
    trainer
        .send(&ClientMsg::WorkshopEnd {
            reference: Some(6),
            id: id.clone(),
        })
        .await;
    let message = expect_error(&mut ada, codes::SESSION_ENDED).await;
    assert!(message.contains("workshop has ended"), "{message}");
    loop {
        if next_workshop(&mut trainer).await.ended {
            break;
        }
    }
    isolab_tests::eventually("Ada's containers removed", Duration::from_secs(10), || {
        stdout(&isolab.run(&["ps"])).lines().count() <= 1
    });
    drop(ada);
    drop(trainer);
    drop(server);
    isolab.assert_no_leaks();
}

#[test]
fn the_cli_creates_lists_and_ends_workshops_with_the_servers_token_file() {
    let isolab = Isolab::new(BIN);
    // No --admin-token: the server makes one and writes it where the CLI reads it.
    let server = Server::start(&isolab);
    let ws = server.url();
    let out = isolab.ok(&["workshop", "--server", &ws, "create", "--lesson", "uts"]);
    assert!(out.contains("code "), "{out}");
    let id = out
        .split_whitespace()
        .nth(1)
        .expect("workshop ID ...")
        .to_string();
    let code = out
        .split("code ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(out.contains(&format!("/?join={code}")), "{out}");
    let ls = isolab.ok(&["workshop", "--server", &ws, "ls"]);
    assert!(ls.contains(&id), "{ls}");
    let lessons = isolab.ok(&["workshop", "--server", &ws, "lessons"]);
    assert!(lessons.contains("uts"), "{lessons}");
    isolab.ok(&["workshop", "--server", &ws, "end", &id]);
    let ls = isolab.ok(&["workshop", "--server", &ws, "ls"]);
    assert!(!ls.contains(&id), "{ls}");
    let bad = isolab.run(&[
        "workshop",
        "--server",
        &ws,
        "--admin-token",
        "not-the-token",
        "ls",
    ]);
    assert!(!bad.status.success());
    assert!(
        isolab_tests::stderr(&bad).contains("admin token"),
        "{}",
        isolab_tests::stderr(&bad)
    );
    drop(server);
    assert!(
        !isolab.state_root.join("admin-token").exists(),
        "the token file goes with the server"
    );
    isolab.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lessons_folder_adds_lessons_and_a_broken_one_stops_the_server_at_start() {
    let isolab = Isolab::new(BIN);
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("custom");
    std::fs::create_dir_all(custom.join("steps")).unwrap();
    std::fs::write(
        custom.join("lesson.toml"),
        "title = \"Our own\"\nsummary = \"A site's lesson.\"\norder = 1\n[[container]]\nname = \"solo\"\n",
    )
    .unwrap();
    std::fs::write(
        custom.join("steps/01-file.md"),
        "+++\ntitle = \"Make a file\"\ncheck = { container = \"solo\", script = \"test -f /tmp/made\" }\n[[solve]]\nexec = \"solo\"\nscript = \"touch /tmp/made\"\n+++\nTouch `/tmp/made`.\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let server = Server::start_with(&isolab, &["--grace", "1", "--lessons", folder]);
    let mut c = Client::connect(&server.url()).await;
    c.send(&ClientMsg::Lessons { reference: Some(1) }).await;
    let lessons = loop {
        if let ServerMsg::Lessons { lessons, .. } = c.next_msg().await {
            break lessons;
        }
    };
    assert_eq!(lessons[0].name, "custom", "order 1 comes first");
    assert!(
        lessons.iter().any(|l| l.name == "uts"),
        "the built-in ones stay"
    );
    drop(c);
    walk(&server.url(), "custom").await.unwrap();
    drop(server);

    // A step whose condition does not parse: the server does not start, and says where.
    std::fs::write(
        custom.join("steps/02-bad.md"),
        "+++\ntitle = \"Bad\"\ncheck = 'solo.hostname =='\n+++\n",
    )
    .unwrap();
    let out = isolab.run(&["serve", "--listen", "127.0.0.1:0", "--lessons", folder]);
    assert!(!out.status.success());
    let err = isolab_tests::stderr(&out);
    assert!(
        err.contains("custom") && err.contains("steps/02-bad.md"),
        "{err}"
    );
    isolab.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classroom_behind_one_address_may_all_join_past_the_per_address_cap() {
    let isolab = Isolab::new(BIN);
    let server = Server::start_with(
        &isolab,
        &[
            "--grace",
            "1",
            "--admin-token",
            ADMIN,
            "--max-sessions-per-ip",
            "1",
        ],
    );
    let url = server.url();
    let mut trainer = Client::connect(&url).await;
    trainer
        .send(&ClientMsg::Admin {
            reference: Some(1),
            token: ADMIN.into(),
        })
        .await;
    trainer
        .send(&ClientMsg::WorkshopCreate {
            reference: Some(2),
            lesson: "uts".into(),
            title: None,
        })
        .await;
    let code = next_workshop(&mut trainer).await.brief.code;
    // The address holds its one session (the trainer's): a plain page is refused...
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(
        refused.is_err(),
        "a second session from 127.0.0.1 is refused"
    );
    // ...a wrong code too; pages from the join link are not.
    let wrong = tokio_tungstenite::connect_async(format!("{url}?join=ZZZZZZ")).await;
    assert!(wrong.is_err(), "only a live workshop's code lifts the cap");
    let a = Client::connect(&format!("{url}?join={}", code.to_lowercase())).await;
    let b = Client::connect(&format!("{url}?join={code}")).await;
    drop((a, b, trainer));
    drop(server);
    isolab.assert_no_leaks();
}
