#!/usr/bin/env python3
"""Density: how many live containers one host holds, and what each costs.

What: `isolab serve` (release build, a state root of its own in /run, session networks on, as a
workshop runs it) and the Rust client tests/examples/density.rs, which opens `--sessions`
sessions of `--per-session` busybox containers each (an idle `sh` with a tty: its own pty,
network namespace with a veth on its session's bridge, cgroup and overlay root), `--concurrency`
sessions being filled at once. At each checkpoint (`--checkpoints 500,1000,2000` containers) the
client types `echo WORD` in every terminal and times the answer (a terminal that does not answer
within 30 s fails the run), then pauses while this script reads the host:
- the server: RSS (VmRSS), open descriptors, threads;
- the monitors (`isolab init`, one per container) and the shells: RSS and PSS summed;
- the machine: MemAvailable's drop since the start (caches dropped before it) divided by the
  containers (the whole cost per container: processes, kernel memory for namespaces, cgroups,
  ptys, page tables), and the kernel's unreclaimable share of it (SUnreclaim, PageTables,
  KernelStack);
- ptys in use (/proc/sys/kernel/pty/nr).
Then the client closes every session; the server removes their containers (grace 1 s) and
SIGTERM stops it. Teardown time and leftovers are reported.

Needs root. Builds `cargo build --release -p isolab -p isolab-tests --example density` first
unless `--no-build`.
Usage: python3 bench/density.py [--sessions 250] [--per-session 8]
       [--checkpoints 500,1000,2000] [--concurrency 4] [--no-network] [--serve-arg=FLAG]...
       [--json FILE]
"""
import argparse, json, os, signal, subprocess, sys, tempfile, threading, time, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import status_kb, pss_kb, monitors, leftovers, sh  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build():
    """The release server and the density client (a `--example` build makes only the example)."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "isolab"], cwd=REPO, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "isolab-tests", "--example", "density"],
                   cwd=REPO, check=True)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def shells_of(mons):
    """Pids of the monitors' children (the containers' shells)."""
    kids = []
    for m in mons:
        try:
            with open(f"/proc/{m}/task/{m}/children") as f:
                kids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return kids


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def measure(binary, server_pid, base):
    mons = monitors(binary, server_pid)
    kids = shells_of(mons)
    mi = meminfo()
    with open("/proc/sys/kernel/pty/nr") as f:
        ptys = int(f.read())
    # Unreclaimable kernel memory only: the reclaimable slab (dentries, inodes) comes and goes
    # with whatever ran before.
    kernel = lambda m: m["SUnreclaim"] + m["PageTables"] + m["KernelStack"]
    return {
        "server_rss_kb": status_kb(server_pid, "VmRSS"),
        "server_hwm_kb": status_kb(server_pid, "VmHWM"),
        "server_fds": count_fds(server_pid),
        "server_threads": status_kb(server_pid, "Threads"),
        "monitors": len(mons),
        "monitors_rss_kb": sum(status_kb(p, "VmRSS") or 0 for p in mons),
        "monitors_pss_kb": sum(pss_kb(p) for p in mons),
        "shells_pss_kb": sum(pss_kb(p) for p in kids),
        "available_drop_kb": base["MemAvailable"] - mi["MemAvailable"],
        "kernel_growth_kb": kernel(mi) - kernel(base),
        "ptys": ptys,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=250)
    p.add_argument("--per-session", type=int, default=8)
    p.add_argument("--checkpoints", default="500,1000,2000")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--no-network", action="store_true")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="one more flag for isolab serve (repeatable), e.g. --serve-arg=--default-storage=0")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    if not args.no_build:
        build()
    binary = os.path.realpath(os.path.join(REPO, "target/release/isolab"))
    client_bin = os.path.join(REPO, "target/release/examples/density")
    state = tempfile.mkdtemp(prefix="isolab-density-", dir="/run")
    os.chmod(state, 0o755)
    env = dict(os.environ, ISOLAB_STATE_ROOT=state)
    log = tempfile.NamedTemporaryFile(prefix="isolab-density-", suffix=".log", delete=False)
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--grace", "1", "--max-sessions-per-ip", "0",
           "--max-load", "1000", "--min-free-memory", "0", "--min-free-disk", "0",
           "--max-containers", str(args.per_session), "--idle", "7200"]
    if args.no_network:
        cmd.append("--no-network")
    cmd += args.serve_arg
    print(f"density.py: {' '.join(cmd)}\n  state root {state}, log {log.name}", file=sys.stderr)
    # A stable baseline: caches dropped first (MemAvailable counts them as available, but a
    # cache freed meanwhile would be credited to the containers).
    subprocess.run(["sync"], check=False)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    time.sleep(1)
    base = meminfo()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log)
    line = server.stdout.readline().decode()
    if "http://" not in line:
        sys.exit(f"the server did not start: {line!r}")
    threading.Thread(target=lambda: shutil.copyfileobj(server.stdout, log), daemon=True).start()
    url = "ws://" + line.split("http://")[1].split("/")[0] + "/ws"
    time.sleep(0.5)
    start = measure(binary, server.pid, base)
    print(f"density: the server at start: RSS {start['server_rss_kb'] / 1024:.1f} MiB", file=sys.stderr)
    client = subprocess.Popen([client_bin, "--url", url, "--sessions", str(args.sessions),
                               "--per-session", str(args.per_session), "--checkpoints", args.checkpoints,
                               "--concurrency", str(args.concurrency)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    points = []
    t0 = time.monotonic()
    for out in client.stdout:
        point = json.loads(out)
        time.sleep(2)  # let the last creates' short-lived work settle
        point.update(measure(binary, server.pid, base))
        point["elapsed_s"] = round(time.monotonic() - t0, 1)
        n = point["containers"]
        point["per_container_kb"] = {
            "host": round(point["available_drop_kb"] / n),
            "kernel": round(point["kernel_growth_kb"] / n),
            "monitor_pss": round(point["monitors_pss_kb"] / n),
            "shell_pss": round(point["shells_pss_kb"] / n),
            "server_rss": round((point["server_rss_kb"] - start["server_rss_kb"]) / n, 1),
        }
        points.append(point)
        fmt = lambda d, k: d[k] if d else None
        print(f"density: {n} containers: server RSS {point['server_rss_kb'] / 1024:.1f} MiB, "
              f"{point['server_fds']} fds; host {point['per_container_kb']['host']} kB per container "
              f"(kernel {point['per_container_kb']['kernel']}, monitor PSS "
              f"{point['per_container_kb']['monitor_pss']}, shell PSS {point['per_container_kb']['shell_pss']}); "
              f"create p50 {fmt(point['create_ms'], 'p50')} ms p99 {fmt(point['create_ms'], 'p99')} ms; "
              f"probe p50 {fmt(point['probe_ms'], 'p50')} ms max {fmt(point['probe_ms'], 'max')} ms; "
              f"silent {point['silent']}",
              file=sys.stderr, flush=True)
        client.stdin.write("\n")
        client.stdin.flush()
    client.stdin.close()
    rc = client.wait()
    # The sessions end (grace 1 s) and remove their containers; then SIGTERM.
    t = time.monotonic()
    while monitors(binary, server.pid) and time.monotonic() - t < 600:
        time.sleep(1)
    drained = time.monotonic() - t
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=300)
    stopped = time.monotonic() - t
    time.sleep(1)
    found = leftovers(argparse.Namespace(isolab=binary), env, [], binary, server.pid)
    result = {"server": " ".join(cmd), "start": start, "points": points, "client_rc": rc,
              "teardown_s": round(drained, 1), "stop_s": round(stopped, 1), "leftovers": found}
    print(f"density: containers removed {drained:.1f} s after the sessions closed; server stopped "
          f"at {stopped:.1f} s; leftovers: {found or 'none'}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    ok = rc == 0 and not found and all(p["silent"] == 0 for p in points)
    if ok:
        shutil.rmtree(state, ignore_errors=True)
    print("density: " + ("OK" if ok else "FAILED"), file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
