#!/usr/bin/env python3
"""Load: many sessions streaming at once, every byte checked, the server's memory watched.

What: `isolab serve` (a state root of its own in /run, `--no-network`: a session network per
session is not what this measures) and the Rust client tests/examples/load.rs, which opens
`--sessions` WebSocket connections (a session each), creates `--terminals` busybox containers
with a tty in each, whose command prints numbered lines (`N abcdefghijklmnopqrstuvwxyz0123456789`)
at `--rate` bytes per second per terminal, for `--seconds`; the client checks every line (numbers
consecutive from 1, text intact, the pty's `\\r\\n`), acknowledges what it consumed, and at the end
removes the containers. Meanwhile, every 5 s: the server's RSS (/proc/PID/status VmRSS), the
monitors' (`isolab init`, one per container) RSS and PSS summed, and the CPU of the server, the
client, the containers (their cgroups) and the whole machine. Then SIGTERM to the server, and a check that nothing is left: `isolab ps`
with that state root empty, no `isolab init` of ours alive, no /sys/fs/cgroup/*/isolab/ID of its
containers, the state root empty.

Bounded: the server's peak RSS over the last half of the window is no more than 5 % (and 4 MiB)
above its peak over the window's first minute (the window starts once every container exists).

Needs root. Builds `cargo build --release -p isolab -p isolab-tests --example load` first unless
`--no-build` (or binaries are given).
Usage: python3 bench/load.py [--sessions 100] [--terminals 2] [--seconds 600] [--rate 20000]
       [--isolab BINARY] [--load BINARY] [--json FILE]
"""
import argparse, glob, json, os, shutil, signal, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def status_kb(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_seconds(pid):
    """User + system time of a process (all its threads), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError):
        return None


def containers_cpu(state_root):
    """CPU seconds of the state root's live containers so far, from their cgroups (v1 cpuacct
    or v2 cpu.stat); (seconds, containers)."""
    try:
        ids = os.listdir(os.path.join(state_root, "containers"))
    except FileNotFoundError:
        return 0.0, 0
    total = 0.0
    for cid in ids:
        try:
            with open(f"/sys/fs/cgroup/cpuacct/isolab/{cid}/cpuacct.usage") as f:
                total += int(f.read()) / 1e9
            continue
        except (FileNotFoundError, ValueError):
            pass
        try:
            with open(f"/sys/fs/cgroup/isolab/{cid}/cpu.stat") as f:
                total += int(f.readline().split()[1]) / 1e6
        except (FileNotFoundError, ValueError, IndexError):
            pass
    return total, len(ids)


def machine_cpu():
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def monitors(binary, server_pid):
    """Pids of the processes running our isolab binary other than the server: the monitors."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == server_pid:
            continue
        try:
            if os.path.realpath(f"/proc/{d}/exe") == binary:
                found.append(int(d))
        except OSError:
            pass
    return found


class Sampler(threading.Thread):
    """Every `every` seconds: server RSS, monitors' RSS and PSS, CPU of server, client, machine."""

    def __init__(self, binary, server_pid, every, state_root):
        super().__init__(daemon=True)
        self.binary, self.server_pid, self.every = binary, server_pid, every
        self.state_root = state_root
        self.client_pid = None
        self.samples = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def sample(self):
        mons = monitors(self.binary, self.server_pid)
        busy, total = machine_cpu()
        ccpu, count = containers_cpu(self.state_root)
        s = {"t": time.monotonic() - self.t0,
             "containers": count, "containers_cpu_s": ccpu,
             "rss_kb": status_kb(self.server_pid, "VmRSS"),
             "monitors": len(mons),
             "monitors_rss_kb": sum(status_kb(p, "VmRSS") or 0 for p in mons),
             "monitors_pss_kb": sum(pss_kb(p) for p in mons),
             "server_cpu_s": cpu_seconds(self.server_pid),
             "client_cpu_s": cpu_seconds(self.client_pid) if self.client_pid else None,
             "busy": busy, "total": total}
        self.samples.append(s)
        return s

    def run(self):
        while not self.stop.wait(self.every):
            self.sample()


def sh(cmd, env=None):
    return subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)


def build(args):
    if args.no_build:
        return
    cmd = ["cargo", "build", "--release", "-p", "isolab", "-p", "isolab-tests", "--example", "load"]
    print("load.py:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=REPO, check=True)


def start_server(args, env, log):
    cmd = [args.isolab, "serve", "--listen", "127.0.0.1:0", "--no-network", "--grace", "1",
           "--max-containers", str(max(8, args.terminals)),
           "--session-memory", f"{max(2048, args.terminals * 64)}m",
           "--idle", str(max(1800, args.seconds + 900)),
           "--lifetime", str(max(4 * 3600, args.seconds + 1800))]
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log)
    line = server.stdout.readline().decode()
    if "http://" not in line:
        server.kill()
        sys.exit(f"the server did not start: {line!r}")
    addr = line.split("http://")[1].split("/")[0]
    # Anything it prints later goes to the log, so that a full pipe never blocks it.
    threading.Thread(target=lambda: shutil.copyfileobj(server.stdout, log), daemon=True).start()
    return server, f"ws://{addr}/ws", " ".join(cmd)


def run_client(args, url, sampler):
    """Run the load example, its progress passed through: (summary, window, exit status)."""
    cmd = [args.load, "--url", url, "--sessions", str(args.sessions), "--terminals",
           str(args.terminals), "--seconds", str(args.seconds), "--rate", str(args.rate),
           "--memory", args.memory]
    print("load.py:", " ".join(cmd), file=sys.stderr)
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler.client_pid = client.pid
    window = {}

    def relay():
        for line in client.stderr:
            if "streaming" in line and "start" not in window:
                window["start"] = time.monotonic() - sampler.t0
                sampler.sample()
            sys.stderr.write(line)
    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    out = client.stdout.read()
    client.wait()
    relay_thread.join(5)
    window["end"] = time.monotonic() - sampler.t0
    lines = out.strip().splitlines()
    if not lines:
        sys.exit(f"the load client printed nothing (exit {client.returncode})")
    return json.loads(lines[-1]), window, client.returncode


def leftovers(args, env, ids, binary, server_pid):
    """What is left after the server stopped: a list of findings (empty: clean)."""
    found = []
    ps = sh([args.isolab, "ps"], env=env)
    rows = [l for l in ps.stdout.splitlines()[1:] if l.strip()]
    if ps.returncode != 0 or rows:
        found.append(f"isolab ps: rc {ps.returncode}, {len(rows)} containers: {rows[:3]} {ps.stderr.strip()}")
    for cid in ids:
        left = glob.glob(f"/sys/fs/cgroup/*/isolab/{cid}") + glob.glob(f"/sys/fs/cgroup/isolab/{cid}")
        if left:
            found.append(f"cgroups of {cid}: {left}")
    mons = monitors(binary, server_pid)
    if mons:
        found.append(f"{len(mons)} isolab processes still alive: {mons[:5]}")
    # The server's own folders (containers, names, uid-ranges) stay, empty.
    state = [os.path.join(d, f) for d, _, files in os.walk(env["ISOLAB_STATE_ROOT"]) for f in files]
    state += [d for d, subdirs, _ in os.walk(env["ISOLAB_STATE_ROOT"])
              if d.count(os.sep) - env["ISOLAB_STATE_ROOT"].count(os.sep) >= 2]
    if state:
        found.append(f"state root not empty: {state[:5]}")
    return found


def mb(kb):
    return kb / 1024 if kb is not None else float("nan")


def report(args, summary, window, samples, found, stop_secs, server_cmd):
    start, end = window.get("start", 0.0), window["end"]
    rss = [(s["t"], s["rss_kb"]) for s in samples if s["rss_kb"] is not None]
    first = [r for t, r in rss if start <= t <= start + 60]
    last_half = [r for t, r in rss if start + args.seconds / 2 <= t <= end]
    first_peak = max(first) if first else None
    half_peak = max(last_half) if last_half else None
    during = [s for s in samples if start <= s["t"] <= end]
    bounded = None
    if args.seconds >= 120 and first_peak and half_peak:
        bounded = half_peak <= max(first_peak * 1.05, first_peak + 4096)
    # CPU over the window: from the sample at its start to the last one inside it.
    cpu = {}
    if len(during) >= 2:
        a, b = during[0], during[-1]
        dt = b["t"] - a["t"]
        for k in ("server_cpu_s", "client_cpu_s", "containers_cpu_s"):
            if a[k] is not None and b[k] is not None:
                cpu[k.split("_")[0]] = (b[k] - a[k]) / dt
        cpu["machine"] = (b["busy"] - a["busy"]) / (b["total"] - a["total"]) * os.cpu_count()
        # Whatever else ran meanwhile (other work on the machine, the kernel's own threads).
        cpu["rest"] = cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")
    mons = max((s["monitors"] for s in samples), default=0)
    mon_rss = max((s["monitors_rss_kb"] for s in samples), default=0)
    mon_pss = max((s["monitors_pss_kb"] for s in samples), default=0)
    peak = max(r for _, r in rss)
    at_start = rss[0][1]
    # The last sample of the streaming (the client still connected), and the very last one:
    # after the client removed its containers and closed, before SIGTERM.
    at_end = ([r for t, r in rss if t <= end] or [rss[-1][1]])[-1]
    after = rss[-1][1]
    per = summary["per_terminal_bps"]
    gap = summary["max_gap_ms"]
    print(f"\nload: {summary['sessions']} sessions x {args.terminals} terminals "
          f"({summary['terminals']} made), {args.seconds} s, --rate {args.rate} B/s per terminal "
          f"({summary['lines_per_batch']} lines per batch, wait {summary['batch_wait_s']} s)")
    print(f"  checked: {summary['bytes']} bytes ({summary['bytes'] / 1e9:.3f} GB), "
          f"{summary['lines']} lines; lost {summary['lost']}, corrupt {summary['corrupt']}, "
          f"errors {summary['errors']}; setup {summary['setup_s']} s, stop {summary['stop_s']} s")
    print(f"  throughput: {summary['throughput_mbps']:.3f} MB/s together; per terminal "
          f"min {per['min']:.0f}, median {per['median']:.0f}, max {per['max']:.0f} B/s; "
          f"longest silence: median {gap['median']:.0f} ms, p99 {gap['p99']:.0f}, max {gap['max']:.0f}")
    print(f"  server RSS (MiB): start {mb(at_start):.1f}, peak {mb(peak):.1f}, end of streaming "
          f"{mb(at_end):.1f}, after the client left {mb(after):.1f}; the window's first minute "
          f"peak {mb(first_peak):.1f}, last half peak {mb(half_peak):.1f} -> bounded: "
          + ("n/a (under 2 min)" if bounded is None else "yes" if bounded else "NO"))
    print(f"  monitors: {mons} at most; together RSS {mb(mon_rss):.1f} MiB, PSS {mb(mon_pss):.1f} MiB "
          f"(peak; {mb(mon_pss) / max(mons, 1) * 1024:.0f} kB PSS each)")
    if cpu:
        print("  CPU over the window (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    print(f"  stop: SIGTERM to exit {stop_secs:.1f} s; leftovers: " + ("none" if not found else "; ".join(found)))
    if summary["error_list"] or summary["bad_lines"]:
        print("  errors: " + json.dumps(summary["error_list"][:5]) + " bad lines: " + json.dumps(summary["bad_lines"][:5]))
    ok = summary["ok"] and not found and bounded is not False
    print("  result: " + ("OK" if ok else "FAILED"))
    result = {"server": server_cmd, "summary": {k: v for k, v in summary.items() if k != "containers"},
              "rss_mib": {"start": mb(at_start), "peak": mb(peak), "end": mb(at_end), "after": mb(after),
                         "first_minute_peak": mb(first_peak), "last_half_peak": mb(half_peak)},
              "bounded": bounded, "monitors": {"count": mons, "rss_mib": mb(mon_rss), "pss_mib": mb(mon_pss)},
              "cpu_cores": cpu, "leftovers": found, "window": window, "samples": samples, "ok": ok}
    return ok, result


def main(args):
    if os.geteuid() != 0:
        sys.exit("needs root (namespaces, mounts, cgroups)")
    if args.isolab is None and args.load is None:
        build(args)
    args.isolab = os.path.realpath(args.isolab or os.path.join(REPO, "target/release/isolab"))
    args.load = args.load or os.path.join(REPO, "target/release/examples/load")
    for binary in (args.isolab, args.load):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: cargo build --release -p isolab -p isolab-tests --example load")
    state = tempfile.mkdtemp(prefix="isolab-load-", dir="/run")
    # As /run/isolab: the containers' users (a user namespace each) must be able to traverse it
    # (with mkdtemp's 0700, `create` fails: "attach the overlay root: Permission denied").
    os.chmod(state, 0o755)
    env = dict(os.environ, ISOLAB_STATE_ROOT=state)
    log = tempfile.NamedTemporaryFile(prefix="isolab-load-", suffix=".log", delete=False)
    print(f"load.py: state root {state}, server log {log.name}", file=sys.stderr)
    server, url, server_cmd = start_server(args, env, log)
    sampler = Sampler(args.isolab, server.pid, args.every, state)
    found, stop_secs, summary, rc = [], float("nan"), None, 1
    try:
        time.sleep(1.0)
        sampler.sample()  # the start: a server with nothing to do yet
        sampler.start()
        summary, window, rc = run_client(args, url, sampler)
        sampler.sample()  # the end, before the stop
    finally:
        sampler.stop.set()
        t = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            found.append("the server did not exit within 120 s of SIGTERM; killed")
            server.kill()
            server.wait()
        stop_secs = time.monotonic() - t
    time.sleep(1.0)
    found += leftovers(args, env, summary["containers"] if summary else [], args.isolab, server.pid)
    if summary is None:
        sys.exit(f"load.py: no summary; leftovers: {found or 'none'}; kept {state} and {log.name}")
    if server.returncode != 0:
        found.append(f"the server exited with {server.returncode}")
    ok, result = report(args, summary, window, sampler.samples, found, stop_secs, server_cmd)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if not found:
        shutil.rmtree(state, ignore_errors=True)
    if ok:
        os.unlink(log.name)
    else:
        print(f"load.py: kept {state} and {log.name} for a look", file=sys.stderr)
    sys.exit(0 if ok and rc == 0 else 1)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--terminals", type=int, default=2, help="per session")
    p.add_argument("--seconds", type=int, default=600, help="the streaming window")
    p.add_argument("--rate", type=int, default=20000,
                   help="bytes per second per terminal (0: as fast as the terminal takes them)")
    p.add_argument("--memory", default="32m", help="each container's memory limit")
    p.add_argument("--every", type=float, default=5.0, help="seconds between memory samples")
    p.add_argument("--isolab", help="the server binary (default target/release/isolab; given: no build)")
    p.add_argument("--load", help="the client (default target/release/examples/load; given: no build)")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--json", help="write the figures and every sample to this file")
    main(p.parse_args())
