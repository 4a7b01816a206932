#!/usr/bin/env python3
"""Terminal over a WebSocket: isolab (`isolab serve`, a shell in a new container) side by side
with terminado (Jupyter's terminal WebSocket server, the same busybox shell on the host).

What, for each server, in one run, alternating rounds:
  start   from opening the WebSocket (and, for isolab, sending `create`) to the first byte of
          the shell's output (isolab makes a container in between; terminado a pty)
  echo    one keystroke to its echo, median of 200
  bulk    `yes aaaa… | head -c 50000000; echo DONE` to the DONE, in MB/s (isolab's client acks
          every frame as it reads it, as the page does)

Needs root, `pip install websockets terminado`, and `cargo build --release -p isolab`.
Usage: python3 bench/web.py [--rounds N]
"""
import argparse, asyncio, json, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

import websockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISOLAB = os.path.join(REPO, "target/release/isolab")
SHELL = "/var/lib/isolab/images/busybox/rootfs/bin/busybox"
BULK = 50_000_000
BULK_CMD = f"yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | head -c {BULK}; echo DO''NE\n"
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


async def until(term, needle, seen=b""):
    while needle not in seen:
        seen = (seen + await term.read())[-4096:]


async def one_round(cls, url, samples):
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
    await term.send("\x15")  # ^U: clear the line
    t = time.perf_counter()
    await term.send(BULK_CMD)
    await until(term, b"DONE")
    samples["bulk"].append(BULK / 1e6 / (time.perf_counter() - t))
    await term.send("exit\n")
    await term.close()


async def main(args):
    iso_port, ter_port = free_port(), free_port()
    state = tempfile.mkdtemp(prefix="isolab-webbench-")
    env = dict(os.environ, ISOLAB_STATE_ROOT=state)
    iso = subprocess.Popen([ISOLAB, "serve", "--listen", f"127.0.0.1:{iso_port}", "--grace", "1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    iso.stdout.readline()
    ter = subprocess.Popen([sys.executable, "-c", TERMINADO, str(ter_port), SHELL],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await asyncio.sleep(1.0)
    servers = [(Isolab, f"ws://127.0.0.1:{iso_port}/ws"), (Terminado, f"ws://127.0.0.1:{ter_port}/ws")]
    samples = {cls.name: {"start": [], "echo": [], "bulk": []} for cls, _ in servers}
    try:
        for r in range(args.rounds + 1):
            for cls, url in servers if r % 2 else reversed(servers):
                s = samples[cls.name] if r else {"start": [], "echo": [], "bulk": []}  # round 0 warms up
                await one_round(cls, url, s)
    finally:
        iso.terminate()
        ter.terminate()
        iso.wait()
        ter.wait()
        shutil.rmtree(state, ignore_errors=True)
    med = {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()}
    print(f"{args.rounds} rounds, alternating; medians")
    print(f"{'':10} {'start (ms)':>11} {'echo (ms)':>10} {'bulk (MB/s)':>12}")
    for n, m in med.items():
        print(f"{n:10} {m['start']:11.1f} {m['echo']:10.3f} {m['bulk']:12.1f}")
    i, t = med["isolab"], med["terminado"]
    print(f"{'isolab/terminado':16} {i['start'] / t['start']:5.2f}x {i['echo'] / t['echo']:10.2f}x {i['bulk'] / t['bulk']:12.2f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(p.parse_args()))
