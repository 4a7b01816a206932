//! `isolab oci`: runc's lifecycle on a bundle (`config.json` + a root folder), observed as a
//! tool that drives runc would: exit codes, the state JSON, the pid file, the console socket,
//! and the container's process seen from the host. Needs root; ends with the leak check.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use isolab_tests::{eventually, stderr, stdout, Isolab};

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

/// A bundle in a fresh folder: `isolab spec` for `cmd`, and the busybox image's files as the
/// root folder (readable by the user namespace's root, as runc would need too).
fn bundle(t: &Isolab, flags: &[&str], cmd: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("isolab-bundle-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let mut args = vec!["spec", "--bundle", path];
    args.extend_from_slice(flags);
    args.push("busybox");
    args.extend_from_slice(cmd);
    t.ok(&args);
    let image: serde_json::Value =
        serde_json::from_str(&t.ok(&["image", "inspect", "busybox"])).unwrap();
    let layer = image["layers"][0]["diff_id"].as_str().unwrap();
    let src = t.data_root.join("layers").join(&layer["sha256:".len()..]);
    let status = std::process::Command::new("cp")
        .args(["-a", src.to_str().unwrap(), &format!("{path}/rootfs")])
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn oci(t: &Isolab, bundle: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["oci"];
    full.extend_from_slice(args);
    t.cmd(&full).current_dir(bundle).output().unwrap()
}

/// `oci run -d`: its stdio is /dev/null, as a caller gives a detached container (the container
/// holds what it gets: a pipe would stay open until it ends).
fn run_detached(t: &Isolab, bundle: &Path, id: &str) {
    let log = bundle.join(format!("{id}.stderr"));
    let status = t
        .cmd(&["oci", "run", "-d", id])
        .current_dir(bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "run -d {id}: {err}");
}

fn state(t: &Isolab, b: &Path, id: &str) -> serde_json::Value {
    let out = oci(t, b, &["state", id]);
    assert!(out.status.success(), "state: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn create_start_state_and_delete_follow_runc() {
    let t = Isolab::new(BIN);
    let b = bundle(&t, &[], &["sh", "-c", "read line; echo got $line"]);
    let pid_file = b.path().join("pid");
    // stdin from a pipe we hold: the process blocks on `read` until we write.
    let mut create = t
        .cmd(&[
            "oci",
            "create",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "c1",
        ])
        .current_dir(b.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = create.stdin.take().unwrap();
    let mut out = create.stdout.take().unwrap();
    assert!(create.wait().unwrap().success(), "create failed");
    let s = state(&t, b.path(), "c1");
    assert_eq!(s["ociVersion"], "1.0.2");
    assert_eq!(s["id"], "c1");
    assert_eq!(s["status"], "created");
    assert_eq!(
        s["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap()
    );
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(s["pid"], pid);
    // Created, not started: the process is the init helper, not yet the command.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!cmdline.contains("read line"), "{cmdline}");
    // An id that is no file name is refused.
    for bad in ["../escape", "a/b", ""] {
        let out = oci(&t, b.path(), &["create", bad]);
        assert!(!out.status.success(), "{bad:?}");
    }
    // A second container under the same id is refused.
    let again = oci(&t, b.path(), &["create", "c1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("c1"), "{}", stderr(&again));
    // Deleting a created container needs --force, as with runc.
    assert!(!oci(&t, b.path(), &["delete", "c1"]).status.success());

    assert!(oci(&t, b.path(), &["start", "c1"]).status.success());
    assert_eq!(state(&t, b.path(), "c1")["status"], "running");
    assert!(
        !oci(&t, b.path(), &["start", "c1"]).status.success(),
        "started twice"
    );
    use std::io::{Read, Write};
    stdin.write_all(b"ping\n").unwrap();
    drop(stdin);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(text, "got ping\n");
    eventually("stopped", Duration::from_secs(5), || {
        state(&t, b.path(), "c1")["status"] == "stopped"
    });
    assert_eq!(state(&t, b.path(), "c1")["pid"], 0);
    // Stopped stays until delete, even through `isolab gc`.
    t.ok(&["gc"]);
    assert_eq!(state(&t, b.path(), "c1")["status"], "stopped");
    assert!(oci(&t, b.path(), &["delete", "c1"]).status.success());
    assert!(!oci(&t, b.path(), &["state", "c1"]).status.success());
    assert!(
        b.path().join("rootfs/bin/busybox").exists(),
        "the bundle is the caller's"
    );
    t.assert_no_leaks();
}

#[test]
fn kill_signals_the_process_and_delete_force_removes_a_running_one() {
    let t = Isolab::new(BIN);
    let b = bundle(&t, &[], &["sleep", "100"]);
    run_detached(&t, b.path(), "k1");
    assert_eq!(state(&t, b.path(), "k1")["status"], "running");
    let out = oci(&t, b.path(), &["delete", "k1"]);
    assert!(!out.status.success(), "deleted while running");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(oci(&t, b.path(), &["kill", "k1", "KILL"]).status.success());
    eventually("stopped by the signal", Duration::from_secs(5), || {
        state(&t, b.path(), "k1")["status"] == "stopped"
    });
    assert!(
        !oci(&t, b.path(), &["kill", "k1"]).status.success(),
        "nothing to kill"
    );
    assert!(oci(&t, b.path(), &["delete", "k1"]).status.success());

    run_detached(&t, b.path(), "k2");
    assert!(oci(&t, b.path(), &["delete", "--force", "k2"])
        .status
        .success());
    assert!(!oci(&t, b.path(), &["state", "k2"]).status.success());
    t.assert_no_leaks();
}

#[test]
fn run_waits_and_passes_the_exit_code_then_deletes() {
    let t = Isolab::new(BIN);
    let b = bundle(&t, &[], &["sh", "-c", "echo $$; exit 7"]);
    let out = oci(&t, b.path(), &["run", "r1"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n", "PID 1 of its own PID namespace");
    assert!(
        !oci(&t, b.path(), &["state", "r1"]).status.success(),
        "deleted"
    );
    t.assert_no_leaks();
}

#[test]
fn a_terminal_goes_to_the_console_socket() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let t = Isolab::new(BIN);
    let b = bundle(&t, &["-t"], &["sh", "-c", "tty; sleep 100"]);
    let socket: PathBuf = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Without a console socket a terminal is refused, as runc refuses it.
    let out = oci(&t, b.path(), &["create", "t0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--console-socket"),
        "{}",
        stderr(&out)
    );
    let out = oci(
        &t,
        b.path(),
        &["create", "--console-socket", socket.to_str().unwrap(), "t1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("a descriptor");
    // SAFETY: the kernel gave us this new descriptor with the message; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    assert!(oci(&t, b.path(), &["start", "t1"]).status.success());
    let mut file = std::fs::File::from(master);
    let mut text = String::new();
    eventually(
        "the tty's name through the pty",
        Duration::from_secs(5),
        || {
            let mut chunk = [0u8; 256];
            if let Ok(n) = std::io::Read::read(&mut file, &mut chunk) {
                text.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
            text.contains("/dev/pts/0")
        },
    );
    assert!(oci(&t, b.path(), &["delete", "-f", "t1"]).status.success());
    t.assert_no_leaks();
}

#[test]
fn a_bundle_made_by_runc_spec_runs() {
    // `runc spec` writes a terminal, a read-only root, "deny all" devices (runc adds its
    // defaults), ambient capabilities without inheritable ones, no user namespace: isolab
    // runs it as runc would. (runc is installed by `cargo xtask setup` as a benchmark peer; it
    // only writes the file here.)
    let t = Isolab::new(BIN);
    let b = bundle(&t, &[], &["true"]);
    std::fs::remove_file(b.path().join("config.json")).unwrap();
    let made = std::process::Command::new("runc")
        .arg("spec")
        .current_dir(b.path())
        .status()
        .expect("runc (cargo xtask setup installs it)");
    assert!(made.success());
    let path = b.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(config["process"]["terminal"], true, "runc spec's default");
    config["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo pid=$$; hostname; id -u; touch /x || exit 3"
    ]);
    std::fs::write(&path, config.to_string()).unwrap();
    let out = t
        .cmd(&[
            "oci",
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            "from-runc-spec",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out).replace('\r', "");
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    assert!(text.contains("pid=1\nrunc\n0\n"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    t.assert_no_leaks();
}
