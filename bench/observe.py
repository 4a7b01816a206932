#!/usr/bin/env python3
"""The live view's cost: CPU the server uses to watch N containers (default 50), against the
same server with the same containers unwatched, in one run.

One session creates N idle busybox shells (each with its pty, cgroup and namespaces), then:
  idle     W seconds with nothing watched: the server's CPU (utime + stime from
           /proc/PID/stat, all its threads, the observer's short-lived threads included)
  watched  W seconds with the host and all N containers watched (the client reads every
           `view` message, as the page does)
and reports each as % of one core, their difference per container, and the view traffic.
Rounds alternate idle and watched.

Needs root, `pip install websockets`, and `cargo build --release -p isolab`.
Usage: python3 bench/observe.py [--containers 50] [--seconds 10] [--rounds 3]
"""
import argparse, asyncio, json, os, socket, statistics, subprocess, tempfile, time

import websockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISOLAB = os.path.join(REPO, "target/release/isolab")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def measure(ws, pid, seconds):
    """CPU % of one core over `seconds`, reading (and counting) everything the server sends."""
    got = {"views": 0, "bytes": 0}

    async def reader():
        while True:
            msg = await ws.recv()
            if isinstance(msg, str) and msg.startswith('{"type":"view"'):
                got["views"] += 1
                got["bytes"] += len(msg)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.5)  # let a watch's first full views pass
    c0, t0, v0, b0 = cpu_seconds(pid), time.perf_counter(), got["views"], got["bytes"]
    await asyncio.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.perf_counter()
    views, nbytes = got["views"] - v0, got["bytes"] - b0
    task.cancel()
    return 100 * (c1 - c0) / (t1 - t0), views / (t1 - t0), nbytes / (t1 - t0)


async def main(args):
    port = free_port()
    state = tempfile.mkdtemp(prefix="isolab-observebench-")
    env = dict(os.environ, ISOLAB_STATE_ROOT=state)
    server = subprocess.Popen(
        [ISOLAB, "serve", "--listen", f"127.0.0.1:{port}", "--grace", "1",
         "--max-containers", str(args.containers), "--session-memory", f"{args.containers * 64}m"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    server.stdout.readline()
    try:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        await ws.recv()  # hello
        names = [f"c{i}" for i in range(args.containers)]
        for name in names:
            spec = {"image": "busybox", "name": name, "cmd": ["sh"], "tty": True, "memory": "64m"}
            await ws.send(json.dumps({"type": "create", "spec": spec}))
            while True:
                msg = await ws.recv()
                if isinstance(msg, str):
                    m = json.loads(msg)
                    if m["type"] == "created":
                        break
                    if m["type"] == "error":
                        raise SystemExit(f"create {name}: {m['message']}")
        targets = [{"kind": "host"}] + [{"kind": "container", "name": n} for n in names]
        results = {"idle": [], "watched": []}
        for _ in range(args.rounds):
            results["idle"].append(await measure(ws, server.pid, args.seconds))
            for t in targets:
                await ws.send(json.dumps({"type": "watch", "target": t}))
            results["watched"].append(await measure(ws, server.pid, args.seconds))
            for t in targets:
                await ws.send(json.dumps({"type": "unwatch", "target": t}))
        await ws.close()
    finally:
        server.terminate()
        server.wait()
    idle = statistics.median(r[0] for r in results["idle"])
    watched = statistics.median(r[0] for r in results["watched"])
    views = statistics.median(r[1] for r in results["watched"])
    traffic = statistics.median(r[2] for r in results["watched"])
    print(f"containers {args.containers}, {args.rounds} rounds of {args.seconds} s, medians:")
    print(f"  server CPU, nothing watched   {idle:6.2f} % of a core")
    print(f"  server CPU, all watched       {watched:6.2f} % of a core")
    print(f"  the observer                  {watched - idle:6.2f} % of a core, "
          f"{(watched - idle) / args.containers:.3f} % per container")
    print(f"  view messages                 {views:6.1f} /s, {traffic / 1024:.1f} KiB/s")
    print(json.dumps({"containers": args.containers, "idle_pct": idle, "watched_pct": watched,
                      "views_per_s": views, "view_bytes_per_s": traffic}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--containers", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(p.parse_args()))
