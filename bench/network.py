#!/usr/bin/env python3
"""What a session network costs at create: the median time from `create` to `created` over the
WebSocket for 15 busybox shells in one session (after 2 warm-up creates), on a server with
`--no-network` (a private namespace with only lo) and on one with its session network (CNI:
bridge + host-local + portmap plugins executed for each container, /etc/hosts written), twice
each, alternating. Needs root, `pip install websockets`, `cargo build --release -p isolab`.
Usage: python3 bench/network.py
"""
import asyncio, json, subprocess, tempfile, websockets, time, statistics, os
async def run(flags, port, n=15):
    st = tempfile.mkdtemp(prefix="cnib-")
    env = dict(os.environ, ISOLAB_STATE_ROOT=st)
    srv = subprocess.Popen(["/work/main/target/release/isolab","serve","--listen",f"127.0.0.1:{port}","--grace","1","--max-containers","100","--session-memory","30g",*flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    srv.stdout.readline()
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws"); await ws.recv()
    times=[]
    for i in range(n+2):
        t=time.perf_counter()
        await ws.send(json.dumps({"type":"create","spec":{"image":"busybox","name":f"c{i}","cmd":["sh"],"tty":True}}))
        while True:
            m=await ws.recv()
            if isinstance(m,str) and json.loads(m)["type"] in ("created","error"):
                assert json.loads(m)["type"]=="created", m
                break
        if i>=2: times.append((time.perf_counter()-t)*1000)
    await ws.close(); srv.terminate(); srv.wait()
    return statistics.median(times)
async def main():
    a=await run(["--no-network"], 18901); b=await run([], 18902)
    a2=await run(["--no-network"], 18903); b2=await run([], 18904)
    print(f"no network {a:.1f} / {a2:.1f} ms, with CNI {b:.1f} / {b2:.1f} ms")
asyncio.run(main())
