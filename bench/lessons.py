#!/usr/bin/env python3
"""What lesson checks cost: N learners sitting on the UTS lesson, against the same containers
without a lesson.

What: `isolab serve` (a state root of its own in /run, `--no-network`) and the Rust client
tests/examples/lessons.rs, twice with the same `--sessions`: once starting the `uts` lesson in
every session (its two containers, and a check re-run about once a second that keeps failing: the
first step's is a script check, run through the runtime's exec), once creating the same two
containers per session without the lesson (the baseline). When every session is ready, the CPU of
the whole machine (/proc/stat: user, nice, system, irq, softirq) and of the server process
(/proc/PID/stat utime, stime, and its waited-for children's) are sampled over `--seconds`. The
difference between the two runs is what the checks cost; per session it is what one learner
costs while the lesson waits for them.

Needs root and a quiet machine. Builds the binaries in release unless `--no-build`.
Usage: python3 bench/lessons.py [--sessions 50] [--seconds 60] [--json FILE]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def machine_busy():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / TICK


def process_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def run(isolab, client, sessions, seconds, lesson):
    state = tempfile.mkdtemp(prefix="isolab-bench-lessons-", dir="/run")
    server = subprocess.Popen(
        [isolab, "--state-root", state, "serve", "--listen", "127.0.0.1:0", "--no-network",
         "--grace", "1", "--max-sessions-per-ip", "0", "--max-load", "1000",
         "--min-free-memory", "0", "--min-free-disk", "0", "--max-containers", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().split("http://")[1].split("/")[0]
        args = [client, "--url", f"ws://{url}/ws", "--sessions", str(sessions), "--seconds", str(seconds)]
        args += ["--lesson", "uts"] if lesson else ["--no-lesson"]
        started = time.time()
        c = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert c.stdout.readline().strip() == "ready", "the client did not get ready"
        ready = time.time() - started
        m0, (s0, k0) = machine_busy(), process_cpu(server.pid)
        out = c.stdout.readline()
        m1, (s1, k1) = machine_busy(), process_cpu(server.pid)
        c.wait()
        summary = json.loads(out)
        return {
            "lesson": lesson,
            "sessions": sessions,
            "containers": sessions * 2,
            "ready_s": round(ready, 1),
            "machine_cores_busy": round((m1 - m0) / seconds, 3),
            "server_cores": round((s1 - s0) / seconds, 3),
            "server_children_cores": round((k1 - k0) / seconds, 3),
            "progress_messages": summary["progress_messages"],
        }
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(state, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--json")
    a = p.parse_args()
    if not a.no_build:
        # Two builds: `--example` alone would leave the binary as it was.
        subprocess.run(["cargo", "build", "--release", "-p", "isolab"], cwd=REPO, check=True)
        subprocess.run(["cargo", "build", "--release", "-p", "isolab-tests", "--example", "lessons"],
                       cwd=REPO, check=True)
    isolab = os.path.join(REPO, "target/release/isolab")
    client = os.path.join(REPO, "target/release/examples/lessons")
    results = []
    for lesson in (False, True):
        r = run(isolab, client, a.sessions, a.seconds, lesson)
        print(json.dumps(r), flush=True)
        results.append(r)
    base, with_lesson = results
    extra = with_lesson["machine_cores_busy"] - base["machine_cores_busy"]
    summary = {
        "checks_cores": round(extra, 3),
        "per_session_millicores": round(1000 * extra / a.sessions, 2),
        "ratio_machine": round(with_lesson["machine_cores_busy"] / max(base["machine_cores_busy"], 1e-6), 2),
    }
    print(json.dumps(summary))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
