#!/usr/bin/env python3
"""Click to prompt: a fresh container against one from the warm pool, with and without session
networks.

What: for each of four servers (`isolab serve`, release build, a state root of its own), fresh or
`--pool busybox=4`, with session networks or `--no-network`, the Rust client
tests/examples/density.rs opens `--sessions` sessions one after the other, `--pace` ms apart (as
attendees arriving), each creating one busybox container with a tty and the image's default
command (`sh`, what the pool holds); the client times each create from the request to `created`,
and to the shell's first output (its prompt). The four servers run one after the other, in a
shuffled order, `--rounds` times; the medians of each round's p50 are reported.

Needs root. Builds `cargo build --release -p isolab -p isolab-tests --example density` first
unless `--no-build`.
Usage: python3 bench/starts.py [--rounds 3] [--sessions 40] [--pace 200] [--markdown]
"""
import argparse, json, os, random, signal, statistics, subprocess, sys, tempfile, time, shutil
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from density import build  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target/release/isolab")
CLIENT = os.path.join(REPO, "target/release/examples/density")
MODES = [("fresh", False), ("pool", False), ("fresh", True), ("pool", True)]


def metric(addr, name):
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def one(mode, network, args):
    state = tempfile.mkdtemp(prefix="isolab-starts-", dir="/run")
    os.chmod(state, 0o755)
    cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--grace", "1", "--max-sessions-per-ip", "0",
           "--max-load", "1000", "--min-free-memory", "0", "--min-free-disk", "0"]
    if not network:
        cmd.append("--no-network")
    if mode == "pool":
        cmd += ["--pool", "busybox=4"]
    server = subprocess.Popen(cmd, env=dict(os.environ, ISOLAB_STATE_ROOT=state),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = server.stdout.readline().decode()
        addr = line.split("http://")[1].split("/")[0]
        deadline = time.monotonic() + 30
        while mode == "pool" and metric(addr, "isolab_pool_ready") != 4:
            if time.monotonic() > deadline:
                sys.exit("the pool did not fill")
            time.sleep(0.2)
        out = subprocess.run([CLIENT, "--url", f"ws://{addr}/ws", "--sessions", str(args.sessions),
                              "--per-session", "1", "--concurrency", "1", "--pace", str(args.pace),
                              "--checkpoints", str(args.sessions)],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        hits = metric(addr, 'isolab_pool_requests_total{result="hit"}') or 0
        if mode == "pool" and hits != args.sessions:
            sys.exit(f"only {hits} of {args.sessions} creates took a pooled container")
        return result["create_ms"]["p50"], result["prompt_ms"]["p50"], result["prompt_ms"]["p90"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sessions", type=int, default=40)
    p.add_argument("--pace", type=int, default=200)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    if not args.no_build:
        build()
    results = {m: [] for m in MODES}
    for r in range(args.rounds):
        order = MODES[:]
        random.shuffle(order)
        for mode, network in order:
            results[(mode, network)].append(one(mode, network, args))
            print(f"starts: round {r + 1}: {mode}, {'network' if network else 'no network'}: "
                  f"created p50 {results[(mode, network)][-1][0]} ms, prompt p50 "
                  f"{results[(mode, network)][-1][1]} ms", file=sys.stderr)
    med = {m: [statistics.median(x[i] for x in v) for i in range(3)] for m, v in results.items()}
    rows = []
    for network in (False, True):
        fresh, pool = med[("fresh", network)], med[("pool", network)]
        label = "session network" if network else "`--no-network`"
        rows.append((label, fresh, pool, fresh[1] / pool[1]))
    if args.markdown:
        print("| | fresh: created / prompt p50 / prompt p90 (ms) | pooled: created / prompt p50 / prompt p90 (ms) | prompt fresh / pooled |")
        print("|---|---:|---:|---:|")
        for label, f, pl, ratio in rows:
            print(f"| {label} | {f[0]:.1f} / {f[1]:.1f} / {f[2]:.1f} | {pl[0]:.1f} / {pl[1]:.1f} / {pl[2]:.1f} | {ratio:.2f}x |")
    else:
        for label, f, pl, ratio in rows:
            print(f"{label}: fresh prompt {f[1]:.1f} ms, pooled {pl[1]:.1f} ms ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
