//! The runtime core, observed from the host: namespaces by inode, cgroup files, mounts, and
//! what commands inside print. Needs root. Every test ends with the shared leak check.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use isolab_tests::{cgroup_dir, eventually, stderr, stdout, Isolab};

const BIN: &str = env!("CARGO_BIN_EXE_isolab");

fn ns_inode(pid: &str, kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("ns {kind} of {pid}: {e}"))
        .ino()
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap()
}

#[test]
fn a_container_joining_another_s_mount_namespace_sees_its_files() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "alpha",
        "busybox",
        "sh",
        "-c",
        "echo from-alpha > /made-by-alpha; sleep 100",
    ]);
    isolab_tests::eventually("alpha's file", Duration::from_secs(5), || {
        t.run(&["exec", "alpha", "cat", "/made-by-alpha"])
            .status
            .success()
    });
    // The monitor stays in the host's mount namespace (its state and cgroups are the host's):
    // only the container's process joins alpha's.
    let out = t.ok(&[
        "run",
        "--mnt",
        "container:alpha",
        "busybox",
        "cat",
        "/made-by-alpha",
    ]);
    assert_eq!(out.trim(), "from-alpha");
    t.ok(&[
        "run",
        "-d",
        "--name",
        "beta",
        "--mnt",
        "container:alpha",
        "busybox",
        "sleep",
        "100",
    ]);
    let (alpha, beta) = (t.pid_of("alpha").to_string(), t.pid_of("beta").to_string());
    assert_eq!(ns_inode(&beta, "mnt"), ns_inode(&alpha, "mnt"));
    t.ok(&["rm", "beta", "alpha"]);
    t.assert_no_leaks();
}

#[test]
fn private_namespaces_differ_from_the_host_and_shared_ones_match() {
    let t = Isolab::new(BIN);
    t.ok(&["run", "-d", "--name", "alpha", "busybox", "sleep", "100"]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "beta",
        "--pid",
        "container:alpha",
        "--net",
        "container:alpha",
        "busybox",
        "sleep",
        "100",
    ]);
    let alpha = t.pid_of("alpha").to_string();
    let beta = t.pid_of("beta").to_string();
    let kinds = ["mnt", "uts", "ipc", "pid", "net", "cgroup"];
    let mut kinds = kinds.to_vec();
    if Path::new("/proc/self/ns/time").exists() {
        kinds.push("time");
    }
    for kind in &kinds {
        assert_ne!(
            ns_inode(&alpha, kind),
            ns_inode("self", kind),
            "{kind} is private"
        );
    }
    // The user namespace is private by default, and beta, which joins alpha's namespaces,
    // joins its user namespace too.
    assert_ne!(ns_inode(&alpha, "user"), ns_inode("self", "user"));
    assert_eq!(ns_inode(&beta, "user"), ns_inode(&alpha, "user"));
    assert_eq!(
        ns_inode(&beta, "pid"),
        ns_inode(&alpha, "pid"),
        "beta joined alpha's pid ns"
    );
    assert_eq!(
        ns_inode(&beta, "net"),
        ns_inode(&alpha, "net"),
        "beta joined alpha's net ns"
    );
    assert_ne!(
        ns_inode(&beta, "uts"),
        ns_inode(&alpha, "uts"),
        "beta's uts is its own"
    );
    // In a shared PID namespace, beta sees alpha's sleep.
    let ps = t.ok(&["exec", "beta", "ps", "-o", "pid,args"]);
    assert_eq!(ps.matches("sleep 100").count(), 2, "{ps}");
    t.ok(&["rm", "beta", "alpha"]);
    assert!(t.ok(&["ps"]).lines().count() == 1, "ps is empty after rm");
    t.assert_no_leaks();
}

#[test]
fn hostname_is_the_requested_one_and_the_host_keeps_its_own() {
    let t = Isolab::new(BIN);
    let before = host_hostname();
    assert_eq!(
        t.ok(&["run", "--hostname", "alpha", "busybox", "hostname"]),
        "alpha\n"
    );
    // Docker's default capabilities leave out CAP_SYS_ADMIN, so renaming is refused inside.
    let out = t.run(&["run", "--hostname", "alpha", "busybox", "hostname", "gamma"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not permitted"), "{}", stderr(&out));
    assert_eq!(host_hostname(), before);
    t.assert_no_leaks();
}

#[test]
fn the_command_is_pid_1_and_sees_only_its_own_processes() {
    let t = Isolab::new(BIN);
    assert_eq!(t.ok(&["run", "busybox", "sh", "-c", "echo $$"]), "1\n");
    let ps = t.ok(&["run", "busybox", "ps", "-o", "pid,args"]);
    let rows: Vec<_> = ps.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "only ps itself: {ps}");
    assert!(rows[0].trim().starts_with("1 "), "{ps}");
    // With --init a reaper is PID 1 and the command PID 2.
    let ps = t.ok(&["run", "--init", "busybox", "ps", "-o", "pid,args"]);
    let rows: Vec<_> = ps.lines().skip(1).map(str::trim).collect();
    assert_eq!(rows.len(), 2, "{ps}");
    assert!(
        rows[0].starts_with("1 ") && rows[1].starts_with("2 "),
        "{ps}"
    );
    t.assert_no_leaks();
}

#[test]
fn exit_codes_and_signals_come_back_like_docker() {
    let t = Isolab::new(BIN);
    let code = |args: &[&str]| t.run(args).status.code();
    assert_eq!(code(&["run", "busybox", "sh", "-c", "exit 3"]), Some(3));
    assert_eq!(
        code(&["run", "--init", "busybox", "sh", "-c", "exit 4"]),
        Some(4)
    );
    // PID 1 ignores signals it has no handler for, as in any PID namespace (and docker)...
    assert_eq!(
        code(&["run", "busybox", "sh", "-c", "kill -TERM $$; exit 5"]),
        Some(5)
    );
    // ...while under --init the command is PID 2, and its death by signal shows as 128+N.
    assert_eq!(
        code(&[
            "run",
            "--init",
            "busybox",
            "sh",
            "-c",
            "kill -TERM $$; sleep 1"
        ]),
        Some(143)
    );
    let out = t.run(&["run", "busybox", "no-such-command"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    t.assert_no_leaks();
}

#[test]
fn a_memory_hog_is_oom_killed() {
    let t = Isolab::new(BIN);
    let out = t.run(&[
        "run",
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 100000000 /dev/zero | tail",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("OOM-killed"), "{}", stderr(&out));
    t.assert_no_leaks();
}

#[test]
fn a_fork_bomb_stays_at_the_pids_limit_and_the_host_still_forks() {
    let t = Isolab::new(BIN);
    // The Done-when bomb, attached: it hits the limit, dies out, and the run ends.
    let out = t.run(&[
        "run",
        "--pids-limit",
        "20",
        "busybox",
        "sh",
        "-c",
        "b(){ b|b& }; b",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The same bomb in the background, with time left to look at its cgroup from the host.
    let id = t
        .ok(&[
            "run",
            "-d",
            "--init",
            "--pids-limit",
            "20",
            "busybox",
            "sh",
            "-c",
            "sleep 2 & b(){ b|b& }; b; wait",
        ])
        .trim()
        .to_string();
    let dir = cgroup_dir("pids", &id);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let until = Instant::now() + Duration::from_millis(1000);
    let mut events = String::new();
    while Instant::now() < until {
        let current: u32 = read("pids.current").trim().parse().unwrap_or(0);
        assert!(current <= 20, "pids.current went past the limit: {current}");
        let host_fork = std::process::Command::new("true").status().unwrap();
        assert!(host_fork.success(), "the host still forks");
        events = Some(read("pids.events"))
            .filter(|e| !e.is_empty())
            .unwrap_or(events);
    }
    // The kernel refused the forks past 20: the bomb did reach the limit.
    let refused: u64 = events.trim().trim_start_matches("max ").parse().unwrap();
    assert!(refused > 0, "no fork was refused: {events:?}");
    eventually("the bomb container to end", Duration::from_secs(15), || {
        !t.state_root.join("containers").join(&id).exists()
    });
    t.assert_no_leaks();
}

#[test]
fn the_reaper_leaves_no_zombies() {
    let t = Isolab::new(BIN);
    // Orphans of a background pipeline end up with PID 1, which must reap them.
    let out = t.ok(&[
        "run",
        "--init",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; sleep 1; ps -o stat | grep -c Z || true",
    ]);
    assert_eq!(out.trim(), "0", "zombies: {out}");
    t.assert_no_leaks();
}

#[test]
fn a_spinner_under_cpus_0_2_uses_about_a_fifth_of_a_cpu() {
    let t = Isolab::new(BIN);
    let id = t
        .ok(&[
            "run",
            "-d",
            "--cpus",
            "0.2",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .trim()
        .to_string();
    let usage = || -> u64 {
        let v1 = cgroup_dir("cpuacct", &id).join("cpuacct.usage");
        if let Ok(ns) = std::fs::read_to_string(&v1) {
            return ns.trim().parse::<u64>().unwrap() / 1000;
        }
        let stat = std::fs::read_to_string(cgroup_dir("cpu", &id).join("cpu.stat")).unwrap();
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .unwrap()
            .parse()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let (u0, t0) = (usage(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let share = (usage() - u0) as f64 / t0.elapsed().as_micros() as f64;
    assert!((0.1..0.3).contains(&share), "used {share:.2} of a CPU");
    t.ok(&["rm", &id]);
    t.assert_no_leaks();
}

#[test]
fn writes_land_in_the_upper_dir_and_vanish_on_remove() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "echo hi > /hello; sleep 100",
    ]);
    let id = t.id_of("w");
    let upper = t
        .data_root
        .join("containers")
        .join(&id)
        .join("upper")
        .join("hello");
    eventually("the file in the upper dir", Duration::from_secs(5), || {
        upper.exists()
    });
    assert_eq!(std::fs::read_to_string(&upper).unwrap(), "hi\n");
    let image: serde_json::Value =
        serde_json::from_str(&t.ok(&["image", "inspect", "busybox"])).unwrap();
    for layer in image["layers"].as_array().unwrap() {
        let hex = layer["diff_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let dir = t.data_root.join("layers").join(hex);
        assert!(
            dir.join("bin/busybox").exists() && !dir.join("hello").exists(),
            "image untouched"
        );
    }
    // The overlay is the container's root (mounted in its own mount namespace: with a user
    // namespace it is made over idmapped layers, given by descriptor, and attached inside, see
    // init/idmap.rs); the upper folder above belongs to the container's root.
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", t.pid_of("w"))).unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" / / ") && l.contains(" - overlay ")),
        "{mounts}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", t.pid_of("w"))).unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap();
    let upper_dir = upper.parent().unwrap();
    assert_eq!(std::fs::metadata(upper_dir).unwrap().uid(), uid);
    t.ok(&["rm", "w"]);
    assert!(!upper.exists());
    t.assert_no_leaks();
}

#[test]
fn proc_is_masked_and_read_only_where_runc_says() {
    let t = Isolab::new(BIN);
    // Masked files read as empty (/dev/null over them), masked folders are empty; which of
    // runc's list exist depends on the kernel.
    for file in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ] {
        if Path::new(file).exists() {
            let script = format!("wc -c < {file}");
            assert_eq!(
                t.ok(&["run", "busybox", "sh", "-c", &script]).trim(),
                "0",
                "{file}"
            );
        }
    }
    if Path::new("/sys/firmware").exists() {
        assert_eq!(t.ok(&["run", "busybox", "ls", "/sys/firmware"]), "");
    }
    // Read-only paths refuse writes (this kernel may lack sysrq; /proc/sys is on the list too).
    let target = if Path::new("/proc/sysrq-trigger").exists() {
        "/proc/sysrq-trigger"
    } else {
        "/proc/sys/kernel/domainname"
    };
    let script = format!("echo h > {target}");
    let out = t.run(&["run", "busybox", "sh", "-c", &script]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = t.run(&["run", "busybox", "sh", "-c", "touch /sys/x"]);
    assert!(!out.status.success(), "/sys is read-only");
    // /dev has the default devices and a private devpts.
    let dev = t.ok(&["run", "busybox", "ls", "/dev"]);
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(dev.split_whitespace().any(|x| x == d), "/dev/{d} in {dev}");
    }
    t.assert_no_leaks();
}

#[test]
fn exec_enters_the_same_hostname_pid_namespace_and_cgroup() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--hostname",
        "exhost",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(t.ok(&["exec", "ex", "hostname"]), "exhost\n");
    let ps = t.ok(&["exec", "ex", "ps", "-o", "pid,args"]);
    assert!(ps.lines().any(|l| l.trim() == "1 sleep 100"), "{ps}");
    let cg = t.ok(&["exec", "ex", "cat", "/proc/self/cgroup"]);
    assert!(
        cg.lines().all(|l| l.ends_with(":/")),
        "cgroup ns root: {cg}"
    );
    let code = t.run(&["exec", "ex", "sh", "-c", "exit 7"]).status.code();
    assert_eq!(code, Some(7));
    // The helper that entered runs from a sealed copy, never the host binary.
    let exe = std::fs::read_link(format!("/proc/{}/exe", t.pid_of("ex"))).unwrap();
    assert!(
        !exe.to_string_lossy().contains("target/"),
        "{}",
        exe.display()
    );
    t.ok(&["rm", "ex"]);
    assert!(t.run(&["exec", "ex", "true"]).status.code() != Some(0));
    t.assert_no_leaks();
}

#[test]
fn a_private_user_namespace_maps_root_to_an_unprivileged_range() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run", "-d", "--name", "u", "--user", "private", "busybox", "sleep", "100",
    ]);
    let pid = t.pid_of("u");
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields[0], 0);
    assert!(fields[1] >= 100_000, "root maps to {}", fields[1]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.contains(&fields[1].to_string()), "{uid_line}");
    assert_eq!(t.ok(&["exec", "u", "id", "-u"]), "0\n");
    t.ok(&["rm", "u"]);
    t.assert_no_leaks();
}

#[test]
fn bad_specs_fail_clearly_before_anything_is_made() {
    let t = Isolab::new(BIN);
    let cases: &[(&[&str], &str)] = &[
        (&["run", "nosuchimage", "true"], "nosuchimage"),
        (&["run", "--hostname", "a/b", "busybox", "true"], "hostname"),
        (&["run", "-m", "0", "busybox", "true"], "memory"),
        (&["run", "-m", "999999t", "busybox", "true"], "memory"),
        (&["run", "--cpus", "0", "busybox", "true"], "cpus"),
        (&["run", "--cpus", "1000", "busybox", "true"], "cpus"),
        (&["run", "--pids-limit", "0", "busybox", "true"], "pids"),
        (&["run", "busybox", ""], "command"),
        (&["run", "--pid", "sideways", "busybox", "true"], "sideways"),
        (
            &["run", "--pid", "container:ghost", "busybox", "true"],
            "ghost",
        ),
    ];
    for (args, needle) in cases {
        let out = t.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(err.to_lowercase().contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(stdout(&out).is_empty());
    }
    t.assert_no_leaks();
}

#[test]
fn a_killed_cli_leaves_nothing_and_gc_cleans_a_dead_monitor() {
    let t = Isolab::new(BIN);
    // kill -9 of an attached `isolab run`: its helper notices and removes the container.
    let mut child = t
        .cmd(&["run", "--name", "k", "busybox", "sleep", "100"])
        .spawn()
        .unwrap();
    eventually("the container to run", Duration::from_secs(5), || {
        let out = t.run(&["inspect", "k"]);
        out.status.success() && stdout(&out).contains("\"init\": {")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    t.assert_no_leaks();
    // kill -9 of the helper itself: the container dies with it, and gc removes the rest.
    t.ok(&["run", "-d", "--name", "m", "busybox", "sleep", "100"]);
    let monitor = t.inspect("m")["monitor"]["pid"].as_i64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    eventually("the container to die", Duration::from_secs(5), || {
        let st = t.inspect("m");
        let pid = st["init"]["pid"].as_i64().unwrap();
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    let out = t.ok(&["gc"]);
    assert!(out.contains("removed"), "{out}");
    t.assert_no_leaks();
}

#[test]
fn the_bundle_is_a_valid_oci_config() {
    let t = Isolab::new(BIN);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_str().unwrap();
    t.ok(&[
        "spec",
        "--bundle",
        bundle,
        "--hostname",
        "oci",
        "-m",
        "64m",
        "busybox",
        "hostname",
    ]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["hostname"], "oci");
    assert_eq!(cfg["process"]["args"][0], "hostname");
    assert_eq!(
        cfg["linux"]["resources"]["memory"]["limit"],
        64 * 1024 * 1024
    );
    assert!(cfg["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/proc/kcore"));
    t.assert_no_leaks();
}

#[test]
fn a_private_network_namespace_has_only_loopback_and_it_is_up() {
    let t = Isolab::new(BIN);
    let links = t.ok(&["run", "busybox", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    t.ok(&["run", "busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1"]);
    t.assert_no_leaks();
}

#[test]
fn cgroup_v2_for_real_on_the_hosts_cgroup2_mount() {
    // This host is hybrid: its cgroup2 mount has no memory/cpu/pids controllers, but everything
    // else of the v2 path (folders, joining, the cgroup namespace, cgroup.kill, removal) runs
    // for real there. On a pure v2 host the other tests already run the v2 path.
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        eprintln!("skipped: no cgroup2 mount at {}", unified.display());
        return;
    }
    let t = Isolab::new(BIN);
    let run = |args: &[&str]| {
        t.cmd(args)
            .env("ISOLAB_CGROUP_ROOT", unified)
            .output()
            .unwrap()
    };
    let out = run(&["run", "-d", "--name", "v2", "busybox", "sleep", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = t.id_of("v2");
    let dir = unified.join("isolab").join(&id);
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), t.pid_of("v2").to_string());
    let out = run(&["exec", "v2", "cat", "/proc/self/cgroup"]);
    assert!(
        stdout(&out).lines().any(|l| l == "0::/"),
        "{}",
        stdout(&out)
    );
    let out = run(&["exec", "v2", "sh", "-c", "mount | grep ' /sys/fs/cgroup '"]);
    assert!(
        stdout(&out).contains("type cgroup2 (ro"),
        "{}",
        stdout(&out)
    );
    let out = run(&["rm", "v2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.exists());
    // A limit whose controller this cgroup2 mount lacks is refused clearly, leaving nothing.
    let out = run(&["run", "-m", "64m", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("memory is not available"),
        "{}",
        stderr(&out)
    );
    t.assert_no_leaks();
}

#[test]
fn the_exec_helper_runs_from_a_sealed_copy() {
    let t = Isolab::new(BIN);
    t.ok(&["run", "-d", "--name", "s", "busybox", "sleep", "100"]);
    let mut exec = t.cmd(&["exec", "s", "sleep", "3"]).spawn().unwrap();
    // The helper that entered the container: its exe is the memfd, never a host file.
    let mut helper = None;
    eventually("the exec helper", Duration::from_secs(5), || {
        helper = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let exe = std::fs::read_link(e.path().join("exe")).ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (cmdline.ends_with(b"init\0") && exe.to_string_lossy().contains("isolab-init"))
                .then_some(exe)
        });
        helper.is_some()
    });
    let exe = helper.unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "{}",
        exe.display()
    );
    assert!(exec.wait().unwrap().success());
    t.ok(&["rm", "s"]);
    t.assert_no_leaks();
}

/// `isolab ARGS` (a shell's words) with a terminal: util-linux's `script` gives isolab one of
/// its own to relay.
fn in_a_terminal(t: &Isolab, args: &str) -> std::process::Output {
    let cmd = format!(
        "ISOLAB_STATE_ROOT={} ISOLAB_DATA_ROOT={} {BIN} {args}",
        t.state_root.display(),
        t.data_root.display()
    );
    std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap()
}

#[test]
fn a_terminal_is_made_inside_the_container() {
    let t = Isolab::new(BIN);
    let out = in_a_terminal(&t, "run -t busybox sh -c 'tty; stty size'");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("/dev/pts/0"),
        "the container's own devpts: {text}"
    );
    t.assert_no_leaks();
}

#[test]
fn signals_reach_the_command_of_an_attached_run() {
    let t = Isolab::new(BIN);
    let mut child = t
        .cmd(&["run", "--name", "sig", "--init", "busybox", "sleep", "100"])
        .spawn()
        .unwrap();
    eventually("the container to run", Duration::from_secs(5), || {
        let out = t.run(&["inspect", "sig"]);
        out.status.success() && stdout(&out).contains("\"init\": {")
    });
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "SIGTERM forwarded to sleep");
    t.assert_no_leaks();
}

#[test]
fn run_makes_the_busybox_image_when_there_is_none() {
    let t = Isolab::new(BIN);
    let data = tempfile::tempdir().unwrap();
    let out = t
        .cmd(&["run", "busybox", "echo", "made"])
        .env("ISOLAB_DATA_ROOT", data.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "made\n", "{}", stderr(&out));
    assert!(data.path().join("images/busybox/image.json").is_file());
    let layers: Vec<_> = std::fs::read_dir(data.path().join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 1, "one layer");
    assert!(layers[0].path().join("bin/busybox").exists());
    let left: Vec<_> = std::fs::read_dir(data.path().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    t.assert_no_leaks();
}

#[test]
fn a_device_node_made_inside_cannot_be_opened() {
    // Docker's capabilities include CAP_MKNOD; without a device cgroup, every file system in the
    // container is nodev instead, and the default devices are binds of the host's nodes.
    // (With the host's user namespace: in a private one, the default, mknod itself fails.)
    let t = Isolab::new(BIN);
    let out = t.run(&[
        "run",
        "--user",
        "host",
        "busybox",
        "sh",
        "-c",
        "mknod /dev/x c 1 3 && echo hi > /dev/x",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    let out = t.run(&[
        "run",
        "--user",
        "host",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/x c 1 3 && echo hi > /tmp/x",
    ]);
    assert!(!out.status.success(), "the root is nodev too");
    let out = t.run(&["run", "busybox", "mknod", "/tmp/x", "c", "1", "3"]);
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "no device node in a user namespace: {}",
        stderr(&out)
    );
    assert_eq!(
        t.ok(&[
            "run",
            "busybox",
            "sh",
            "-c",
            "echo x > /dev/null && echo ok"
        ]),
        "ok\n"
    );
    t.assert_no_leaks();
}

#[test]
fn not_root_gets_a_clear_message() {
    let t = Isolab::new(BIN);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "ps",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("must run as root"),
        "{}",
        stderr(&out)
    );
    t.assert_no_leaks();
}

#[test]
fn proc_inside_is_nosuid_nodev_noexec() {
    let t = Isolab::new(BIN);
    let line = t.ok(&["run", "busybox", "grep", " /proc ", "/proc/self/mountinfo"]);
    let options = line
        .split_whitespace()
        .nth(5)
        .unwrap_or_default()
        .to_string();
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            options.split(',').any(|o| o == flag),
            "{flag} missing: {line}"
        );
    }
    t.assert_no_leaks();
}

#[test]
fn stop_sends_sigterm_then_kills_through_the_cgroup() {
    let t = Isolab::new(BIN);
    // A command that ends on SIGTERM ends at once.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
    ]);
    let started = Instant::now();
    t.ok(&["stop", "polite"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // One that ignores it (and a child that inherits that) is killed after the timeout,
    // every process of its cgroup.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000 & sleep 1000",
    ]);
    let cg = cgroup_dir("pids", &t.id_of("stubborn"));
    eventually("both processes", Duration::from_secs(5), || {
        std::fs::read_to_string(cg.join("cgroup.procs")).is_ok_and(|p| p.lines().count() >= 2)
    });
    let started = Instant::now();
    t.ok(&["stop", "-t", "1", "stubborn"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for SIGTERM first"
    );
    assert!(!cg.exists(), "its cgroup is gone");
    assert!(!t.run(&["inspect", "stubborn"]).status.success());
    t.assert_no_leaks();
}

#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_nothing() {
    // The data root on a small tmpfs of its own, filled up: a create fails with "No space
    // left on device" naming the step, not a panic, and leaves nothing; once there is room
    // again, containers run.
    let t = Isolab::new(BIN);
    let data = tempfile::Builder::new()
        .prefix("isolab-full-")
        .tempdir_in("/var/tmp")
        .unwrap();
    nix::mount::mount(
        Some("isolab-test"),
        data.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=16m"),
    )
    .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let unmount = Unmount(data.path());
    // Both roots on it: the state files (config.json, state.json) need room too.
    let state = data.path().join("run");
    let run = |args: &[&str]| {
        t.cmd(args)
            .env("ISOLAB_DATA_ROOT", data.path())
            .env("ISOLAB_STATE_ROOT", &state)
            .output()
            .unwrap()
    };
    assert!(run(&["image", "init"]).status.success());
    let filler = data.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=1M",
            "count=32",
        ])
        .stderr(std::process::Stdio::null())
        .status();
    let out = run(&["run", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    for dir in [data.path().join("containers"), state.join("containers")] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }
    // A build that writes a layer says so too.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo hi > /f\n",
    )
    .unwrap();
    let out = run(&["build", "-t", "full", ctx.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("No space left on device") && !text.contains("panicked"),
        "{text}"
    );
    std::fs::remove_file(&filler).unwrap();
    let out = run(&["run", "busybox", "echo", "room"]);
    assert_eq!(stdout(&out), "room\n", "{}", stderr(&out));
    drop(unmount); // the test's own tmpfs, before the leak check looks at mounts
    t.assert_no_leaks();
}

#[test]
fn a_private_state_root_still_works() {
    // `mktemp -d` makes 0700 folders; a container's root (an unprivileged host uid) must still
    // reach its mount points through the state root.
    let t = Isolab::new(BIN);
    let state = tempfile::Builder::new()
        .prefix("isolab-0700-")
        .tempdir_in("/run")
        .unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let out = t
        .cmd(&["run", "busybox", "echo", "reached"])
        .env("ISOLAB_STATE_ROOT", state.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "reached\n", "{}", stderr(&out));
    t.assert_no_leaks();
}

/// A run refused before anything was made: exit code 125, and `says` on stderr.
fn assert_refused(out: &std::process::Output, says: &str) {
    assert_eq!(out.status.code(), Some(125), "{}", stderr(out));
    assert!(
        stderr(out).contains(says),
        "{says:?} not in {}",
        stderr(out)
    );
}

/// The uid a file has on the host.
fn host_uid(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .uid()
}

#[test]
fn a_volume_outlives_its_container_and_is_root_s_in_every_uid_range() {
    let t = Isolab::new(BIN);
    // The first range stays taken, so the writer's and the reader's ranges differ.
    t.ok(&["run", "-d", "--name", "holder", "busybox", "sleep", "100"]);
    let write = "echo hello > /data/f; mkdir /data/sub; cat /proc/self/uid_map";
    let writer_map = t.ok(&["run", "-v", "data:/data", "busybox", "sh", "-c", write]);
    t.ok(&["run", "-d", "--name", "holder2", "busybox", "sleep", "100"]);
    let read = "cat /data/f; ls -ln /data; cat /proc/self/uid_map; echo again >> /data/f";
    let out = t.ok(&["run", "-v", "data:/data", "busybox", "sh", "-c", read]);
    let range = |map: &str| map.split_whitespace().nth(1).map(str::to_string);
    let reader_map = out.lines().last().unwrap_or_default().to_string();
    assert!(range(&writer_map).is_some(), "{writer_map}");
    assert_ne!(
        range(&writer_map),
        range(&reader_map),
        "{writer_map} / {out}"
    );
    assert!(out.starts_with("hello\n"), "{out}");
    for entry in ["f", "sub"] {
        let line = out.lines().find(|l| l.ends_with(entry)).unwrap_or("");
        let ids: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
        assert_eq!(ids, ["0", "0"], "root's inside: {out}");
    }
    // On the host: stored 0-based, as image layers are.
    let dir = t.state_root.join("volumes/local/data");
    assert_eq!(host_uid(&dir.join("f")), 0);
    assert_eq!(host_uid(&dir.join("sub")), 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).unwrap(),
        "hello\nagain\n"
    );
    // With the host's user namespace it is a plain bind of the same folder.
    let out = t.ok(&[
        "run",
        "--user",
        "host",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "cat /data/f",
    ]);
    assert_eq!(out, "hello\nagain\n");
    // `volume ls` names its users; `volume rm` refuses while one runs.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "user1",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "100",
    ]);
    let ls = t.ok(&["volume", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("data") && l.contains("user1")),
        "{ls}"
    );
    let out = t.run(&["volume", "rm", "data"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use by user1"), "{}", stderr(&out));
    assert!(dir.join("f").exists());
    t.ok(&["rm", "user1", "holder", "holder2"]);
    assert_eq!(t.ok(&["volume", "rm", "data"]), "data\n");
    assert!(!dir.exists());
    let out = t.run(&["volume", "rm", "data"]);
    assert!(stderr(&out).contains("no such volume"), "{}", stderr(&out));
    t.assert_no_leaks();
}

#[test]
fn a_read_only_volume_refuses_writes_and_bad_volumes_are_refused_clearly() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run",
        "-v",
        "conf:/etc/app",
        "busybox",
        "sh",
        "-c",
        "echo v1 > /etc/app/c",
    ]);
    for user in ["private", "host"] {
        let out = t.run(&[
            "run",
            "--user",
            user,
            "-v",
            "conf:/etc/app:ro",
            "busybox",
            "sh",
            "-c",
            "cat /etc/app/c; echo v2 > /etc/app/c",
        ]);
        assert_eq!(out.status.code(), Some(1), "{user}");
        assert_eq!(stdout(&out), "v1\n");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
    }
    let path = t.state_root.join("volumes/local/conf/c");
    assert_eq!(std::fs::read_to_string(path).unwrap(), "v1\n");
    for (bad, says) in [
        ("conf", "volumes[0]: \"conf\" is not NAME:/path[:ro]"),
        ("conf:/proc/x", "volumes[0]: \"/proc/x\" is under /proc"),
        ("../x:/x", "volumes[0]: \"../x\" is not a valid volume name"),
        (
            "conf:/x:rx",
            "volumes[0]: \"conf:/x:rx\": \"rx\" is not a mode",
        ),
    ] {
        assert_refused(&t.run(&["run", "-v", bad, "busybox", "true"]), says);
    }
    t.ok(&["volume", "rm", "conf"]);
    t.assert_no_leaks();
}

/// Whether `name` is in PATH (runc and crun are optional peers).
fn installed(name: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join(name).is_file())
}

/// The container's memory limit, from its cgroup (v1 or v2).
fn memory_limit(id: &str) -> String {
    let dir = cgroup_dir("memory", id);
    let file = ["memory.limit_in_bytes", "memory.max"]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no memory limit file in {}", dir.display()));
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

#[test]
fn the_same_spec_runs_under_isolab_runc_and_crun() {
    let t = Isolab::new(BIN);
    for rt in ["isolab", "runc", "crun"] {
        if rt != "isolab" && !installed(rt) {
            eprintln!("skipped: {rt} is not installed here");
            continue;
        }
        let name = format!("under-{rt}");
        let args = ["run", "-d", "--name", &name, "--runtime", rt, "-m", "48m"];
        t.ok(&[&args[..], &["busybox", "sleep", "100"]].concat());
        let pid = t.pid_of(&name).to_string();
        for kind in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
            assert_ne!(
                ns_inode(&pid, kind),
                ns_inode("self", kind),
                "{rt}: the {kind} namespace is the container's own"
            );
        }
        let id = t.id_of(&name);
        assert_eq!(memory_limit(&id), (48u64 << 20).to_string(), "{rt}");
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(cgroup.contains(&format!("/isolab/{id}")), "{rt}: {cgroup}");
        let inside = t.ok(&["exec", &name, "sh", "-c", "echo $$; id -u; hostname"]);
        assert!(inside.ends_with(&format!("0\n{name}\n")), "{rt}: {inside}");
        t.ok(&["rm", &name]);
        assert!(
            !cgroup_dir("memory", &id).exists(),
            "{rt}: its cgroup is gone"
        );
        // A terminal that answers.
        let run = format!("run -t --runtime {rt} busybox sh -c 'tty; echo pid=$$; exit 4'");
        let out = in_a_terminal(&t, &run);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(4), "{rt}: {text}{}", stderr(&out));
        assert!(
            text.contains("/dev/pts/0") && text.contains("pid=1"),
            "{rt}: {text}"
        );
        if rt != "isolab" {
            let state = t.state_root.join(format!("peer-{rt}"));
            let left: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().collect();
            assert!(left.is_empty(), "{rt} kept {left:?}");
        }
    }
    t.assert_no_leaks();
}

#[test]
fn a_runtime_that_is_not_installed_or_known_is_refused_clearly() {
    let t = Isolab::new(BIN);
    let out = t
        .cmd(&["run", "--runtime", "runc", "busybox", "true"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_refused(&out, "runc is not installed on this host");
    let out = t.run(&["run", "--runtime", "youki", "busybox", "true"]);
    assert_refused(&out, "runtime: \"youki\" is not a runtime");
    t.assert_no_leaks();
}

#[test]
fn a_volume_is_root_s_under_a_peer_that_idmaps_and_refused_by_one_that_cannot() {
    let t = Isolab::new(BIN);
    t.ok(&[
        "run",
        "-v",
        "pv:/pv",
        "busybox",
        "sh",
        "-c",
        "echo mine > /pv/f",
    ]);
    for rt in ["runc", "crun"] {
        if !installed(rt) {
            eprintln!("skipped: {rt} is not installed here");
            continue;
        }
        let read = "cat /pv/f; ls -ln /pv/f";
        let out = t.run(&[
            "run",
            "--runtime",
            rt,
            "-v",
            "pv:/pv",
            "busybox",
            "sh",
            "-c",
            read,
        ]);
        let err = stderr(&out);
        if err.contains("makes no idmapped mounts") {
            // runc before 1.2: a clear refusal, nothing made.
            assert_refused(&out, "volumes: ");
            continue;
        }
        let text = stdout(&out);
        assert!(out.status.success(), "{rt}: {text}{err}");
        let ids: Vec<&str> = text
            .lines()
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            (text.lines().next(), ids.get(2..4)),
            (Some("mine"), Some(&["0", "0"][..]))
        );
    }
    t.ok(&["volume", "rm", "pv"]);
    t.assert_no_leaks();
}

#[test]
fn publishing_a_port_without_a_server_is_refused_not_ignored() {
    let t = Isolab::new(BIN);
    for flag in ["-p", "--publish"] {
        let out = t.run(&["run", flag, "8080:80", "busybox", "echo", "ran"]);
        assert_refused(&out, "-p/--publish needs --server");
        assert!(stdout(&out).is_empty(), "nothing ran: {}", stdout(&out));
    }
    // Nor in a bundle's config.json, which has no place for it.
    let bundle = tempfile::tempdir().unwrap();
    let dir = bundle.path().to_str().unwrap();
    let out = t.run(&["spec", "--bundle", dir, "-p", "8080:80", "busybox"]);
    assert_refused(&out, "-p/--publish needs --server");
    assert!(!bundle.path().join("config.json").exists());
    t.assert_no_leaks();
}
