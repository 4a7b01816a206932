#!/usr/bin/env python3
"""Terminal over a WebSocket: isolab (`isolab serve`, a shell in a new container) side by side
with terminado (Jupyter's terminal WebSocket server, the same busybox shell on the host).

What, for each server, in one run, alternating rounds:
  start   from opening the WebSocket (and, for isolab, sending `create`) to the first byte of
          the shell's output (isolab makes a container in between; terminado a pty)
  echo    one keystroke to its echo, median of 200
  bulk    `cat` of a 50 MB file of 40-byte lines (written first, not timed) to a marker echoed
          after it, in MB/s; and the same without a newline in the file ("bulk, no newlines").
          Measured by the Rust client tests/examples/wsbench.rs (isolab's output acknowledged
          every 64 KiB), one run of it per server and round; `pty` is the same shell on a local
          pty read directly by the same client, without any server: the ceiling. Also the
          server's CPU time per MB over each run (user + system of the server process, from
          /proc/PID/stat; not the shell's or `cat`'s).

Needs root, `pip install websockets terminado`, and
`cargo build --release -p isolab -p isolab-tests --example wsbench`.
Usage: python3 bench/web.py [--rounds N] [--isolab BINARY] [--wsbench BINARY]
"""
import argparse, asyncio, json, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

import websockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Debian's busybox-static: the binary `isolab image init` puts into the busybox image.
SHELL = "/bin/busybox"
BULK = 50_000_000
# The bulk columns: bytes per line of the file `cat` writes (0: no newline at all).
LINES = {"bulk": 40, "bulk0": 0}
TERMINADO = """
import sys, tornado.ioloop, tornado.web, terminado
m = terminado.UniqueTermManager(shell_command=[sys.argv[2], 'sh'])
app = tornado.web.Application([(r'/ws', terminado.TermSocket, {'term_manager': m})])
app.listen(int(sys.argv[1]), '127.0.0.1')
tornado.ioloop.IOLoop.current().start()
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Isolab:
    name = "isolab"

    def __init__(self, url):
        self.url, self.ws, self.handle = url, None, None

    async def open(self):
        self.ws = await websockets.connect(self.url, max_size=None)
        await self.ws.recv()  # hello
        spec = {"image": "busybox", "cmd": ["sh"], "tty": True}
        await self.ws.send(json.dumps({"type": "create", "spec": spec}))
        while self.handle is None:
            msg = await self.ws.recv()
            if isinstance(msg, str) and json.loads(msg)["type"] == "created":
                self.handle = json.loads(msg)["handle"]

    async def send(self, text):
        await self.ws.send(bytes([2]) + struct.pack(">I", self.handle) + text.encode())

    async def read(self):
        """The next chunk of terminal output (acknowledged at once)."""
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, bytes):
                data = msg[5:]
                await self.ws.send(json.dumps({"type": "ack", "handle": self.handle, "bytes": len(data)}))
                return data

    async def close(self):
        await self.ws.close()


class Terminado:
    name = "terminado"

    def __init__(self, url):
        self.url, self.ws = url, None

    async def open(self):
        self.ws = await websockets.connect(self.url, max_size=None)

    async def send(self, text):
        await self.ws.send(json.dumps(["stdin", text]))

    async def read(self):
        while True:
            msg = json.loads(await self.ws.recv())
            if msg[0] == "stdout":
                return msg[1].encode()

    async def close(self):
        await self.ws.close()


class Pty:
    """No server: the same shell on a local pty, for the bulk ceiling only (`wsbench --pty`)."""
    name = "pty"


async def until(term, needle, seen=b""):
    while needle not in seen:
        seen = (seen + await term.read())[-4096:]


async def one_round(cls, url, pid, samples, wsbench):
    if cls is not Pty:
        await start_and_echo(cls, url, samples)
    for column, line in LINES.items():
        cpu = cpu_seconds(pid)
        samples[column].append(bulk(wsbench, cls.name, url, line))
        if pid is not None:
            samples["cpu " + column].append((cpu_seconds(pid) - cpu) * 1000 / (BULK / 1e6))


async def start_and_echo(cls, url, samples):
    t0 = time.perf_counter()
    term = cls(url)
    await term.open()
    first = await term.read()
    samples["start"].append((time.perf_counter() - t0) * 1000)
    await until(term, b"# ", first)
    rtts = []
    for i in range(200):
        ch = "abcdefghij"[i % 10]
        t = time.perf_counter()
        await term.send(ch)
        await until(term, ch.encode())
        rtts.append((time.perf_counter() - t) * 1000)
    samples["echo"].append(statistics.median(rtts))
    await term.send("\x15exit\n")  # ^U: clear the line
    await term.close()


def bulk(wsbench, kind, target, line):
    """One round of `wsbench` (a new terminal, `cat` of BULK bytes): MB/s."""
    out = subprocess.run([wsbench, f"--{kind}", target, "--bytes", str(BULK), "--line", str(line),
                          "--rounds", "1", "--warmup", "0"],
                         stdout=subprocess.PIPE, check=True, text=True, timeout=600)
    return json.loads(out.stdout.splitlines()[-1])["median_mbps"]


def cpu_seconds(pid):
    """A server's CPU time so far, user and system, all its threads (not its children's)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(args):
    for binary in (args.isolab, args.wsbench):
        if not os.path.exists(binary):
            sys.exit(f"{binary} is missing: cargo build --release -p isolab -p isolab-tests --example wsbench")
    iso_port, ter_port = free_port(), free_port()
    state = tempfile.mkdtemp(prefix="isolab-webbench-")
    env = dict(os.environ, ISOLAB_STATE_ROOT=state)
    iso = subprocess.Popen([args.isolab, "serve", "--listen", f"127.0.0.1:{iso_port}", "--grace", "1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    iso.stdout.readline()
    ter = subprocess.Popen([sys.executable, "-c", TERMINADO, str(ter_port), SHELL],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1.0)
    servers = [(Isolab, f"ws://127.0.0.1:{iso_port}/ws", iso.pid),
               (Terminado, f"ws://127.0.0.1:{ter_port}/ws", ter.pid),
               (Pty, SHELL, None)]
    empty = lambda: {k: [] for k in ["start", "echo", *LINES, *("cpu " + c for c in LINES)]}
    samples = {cls.name: empty() for cls, _, _ in servers}
    try:
        for r in range(args.rounds + 1):
            for cls, url, pid in servers if r % 2 else reversed(servers):
                s = samples[cls.name] if r else empty()  # round 0 warms up
                await one_round(cls, url, pid, s, args.wsbench)
    finally:
        iso.terminate()
        ter.terminate()
        iso.wait()
        ter.wait()
        shutil.rmtree(state, ignore_errors=True)
    med = {n: {k: statistics.median(v) if v else float("nan") for k, v in s.items()}
           for n, s in samples.items()}
    i, t, p = med["isolab"], med["terminado"], med["pty"]
    print(f"{args.rounds} rounds, alternating; medians")
    print(f"{'':18} {'start (ms)':>11} {'echo (ms)':>10}")
    for n in ("isolab", "terminado"):
        print(f"{n:18} {med[n]['start']:11.1f} {med[n]['echo']:10.3f}")
    print(f"{'isolab/terminado':18} {i['start'] / t['start']:10.2f}x {i['echo'] / t['echo']:9.2f}x")
    print(f"\nbulk: `cat` of {BULK / 1e6:g} MB; MB/s, and the server's CPU in ms per MB")
    print(f"{'':18} {'40-byte lines':>14} {'no newlines':>12} {'CPU, lines':>11} {'CPU, no nl':>11}")
    for n, m in med.items():
        print(f"{n:18} {m['bulk']:14.1f} {m['bulk0']:12.1f} {m['cpu bulk']:11.1f} {m['cpu bulk0']:11.1f}")
    for a, b in (("isolab", "terminado"), ("isolab", "pty"), ("terminado", "pty")):
        x, y = med[a], med[b]
        cpu = f"{x['cpu bulk'] / y['cpu bulk']:10.2f}x {x['cpu bulk0'] / y['cpu bulk0']:10.2f}x" if b != "pty" else ""
        print(f"{a + '/' + b:18} {x['bulk'] / y['bulk']:13.2f}x {x['bulk0'] / y['bulk0']:11.2f}x {cpu}")
    print("every round, MB/s (40-byte lines; no newlines):")
    for n, s in samples.items():
        print(f"  {n:10} {s['bulk']}; {s['bulk0']}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--isolab", default=os.path.join(REPO, "target/release/isolab"), help="the binary to serve")
    p.add_argument("--wsbench", default=os.path.join(REPO, "target/release/examples/wsbench"),
                   help="the bulk client (tests/examples/wsbench.rs)")
    asyncio.run(main(p.parse_args()))
