#!/usr/bin/env python3
"""Container lifecycle benchmark: isolab vs runc vs crun vs a bare-namespace floor.

What: the wall time of the whole lifecycle (create, start, wait, remove) of a
container running `/bin/true` with a 64 MiB memory limit and a pids limit of 64:

  isolab  target/release/isolab run -m 64m --pids-limit 64 busybox /bin/true
  runc    runc --root <tmp>/runc-state run --bundle <bundle> <id>
  crun    crun --root <tmp>/crun-state run --bundle <bundle> <id>
  floor   unshare --fork --pid --mount --uts --ipc --net --mount-proc chroot <rootfs> /bin/true

How: the bundle's rootfs is a `cp -a` of isolab's busybox image and its
config.json comes from `isolab spec`, adjusted minimally for runc/crun (own
cgroupsPath under /isolab-bench, no terminal, and the time namespace dropped
if runc rejects it). crun refuses hybrid cgroup hosts, so the measuring loop
re-execs itself in a private mount namespace (`unshare --mount --propagation
private`) where /sys/fs/cgroup/unified is unmounted; all four commands run in
that same namespace (a pure cgroup v1 view). Rounds alternate: each round runs
every command once, in a freshly shuffled order; warm-up rounds are discarded.
Each sample is time.perf_counter() around subprocess.run(..., check=True).

Usage (as root, from anywhere):  python3 bench/lifecycle.py [--rounds N] [--markdown] [--no-build]
"""
import argparse, glob, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISOLAB = os.path.join(REPO, "target/release/isolab")
DATA_ROOT = "/var/lib/isolab"
UNIFIED = "/sys/fs/cgroup/unified"
LIMITS = ["-m", "64m", "--pids-limit", "64"]
NAMES = ["isolab", "runc", "crun", "floor"]


def sh(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)


def first_line(cmd):
    try:
        return sh(cmd).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "unavailable"


def cgroup_mode(mounts):
    fs = {m[1]: m[2] for m in mounts}
    if fs.get("/sys/fs/cgroup") == "cgroup2":
        return "v2 (unified)"
    if fs.get(UNIFIED) == "cgroup2":
        return "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)"
    return "v1"


def read_mounts():
    with open("/proc/mounts") as f:
        return [line.split() for line in f]


# ---------------------------------------------------------------- inner side
def set_config(bundle, cid, drop_time):
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["linux"]["cgroupsPath"] = f"/isolab-bench/{cid}"
    cfg["process"]["terminal"] = False
    if drop_time:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "time"]
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def inner(args):
    tmp, notes = args.inner, []
    bundle, rootfs = os.path.join(tmp, "bundle"), os.path.join(tmp, "bundle", "rootfs")
    state = {"runc": os.path.join(tmp, "runc-state"), "crun": os.path.join(tmp, "crun-state")}
    r = sh(["umount", UNIFIED])  # only inside this private mount namespace
    if r.returncode != 0:
        sys.exit(f"umount {UNIFIED} failed in the private namespace: {r.stderr.strip()}")
    counter = iter(range(10**9))

    def oci(rt):
        cid = f"bench-{rt}-{os.getpid()}-{next(counter)}"
        set_config(bundle, cid, drop_time)
        return [rt, "--root", state[rt], "run", "--bundle", bundle, cid]

    # Trial runs: runc first (adjusting the spec minimally), then crun with the same bundle.
    drop_time = False
    r = sh(oci("runc"))
    if r.returncode != 0 and "time" in r.stderr and "namespace" in r.stderr:
        drop_time = True
        notes.append("removed the `time` namespace from config.json for runc AND crun "
                     f"(runc said: {r.stderr.strip().splitlines()[-1]}); isolab still makes one")
        r = sh(oci("runc"))
    if r.returncode != 0:
        sys.exit(f"runc trial run failed (exit {r.returncode}): {r.stderr.strip()}")
    names = list(NAMES)
    r = sh(oci("crun"))
    if r.returncode != 0:
        msg = f"crun trial run FAILED (exit {r.returncode}): {r.stderr.strip()} -- crun left out"
        print("!!", msg, file=sys.stderr)
        notes.append(msg)
        names.remove("crun")

    cmds = {
        "isolab": lambda: [ISOLAB, "run", *LIMITS, "busybox", "/bin/true"],
        "runc": lambda: oci("runc"),
        "crun": lambda: oci("crun"),
        "floor": lambda: ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
                          "--mount-proc", "chroot", rootfs, "/bin/true"],
    }
    samples = {n: [] for n in names}
    rng = random.Random(args.seed)
    for rnd in range(args.warmup + args.rounds):
        order = list(names)
        rng.shuffle(order)
        for name in order:
            cmd = cmds[name]()  # building the command (and rewriting config.json) is untimed
            t0 = time.perf_counter()
            try:
                subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, check=True)
            except subprocess.CalledProcessError as e:
                sys.exit(f"{name} failed in round {rnd}: {' '.join(cmd)}\n{e.stderr.decode()}")
            if rnd >= args.warmup:
                samples[name].append((time.perf_counter() - t0) * 1000)

    for rt in ("runc", "crun"):  # no container may survive
        if shutil.which(rt) and os.path.isdir(state[rt]):
            listed = json.loads(sh([rt, "--root", state[rt], "list", "--format", "json"]).stdout or "[]")
            for c in listed or []:
                notes.append(f"{rt} left container {c['id']} ({c['status']}); deleted it")
                sh([rt, "--root", state[rt], "delete", "--force", c["id"]])
    with open(os.path.join(tmp, "results.json"), "w") as f:
        json.dump({"samples": samples, "notes": notes, "drop_time": drop_time}, f)


# ---------------------------------------------------------------- outer side
def rm_bench_cgroups():
    left = []
    for parent in glob.glob("/sys/fs/cgroup/*/isolab-bench"):
        for d, _, _ in sorted(os.walk(parent), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(d)
            except OSError as e:
                left.append(f"{d}: {e.strerror}")
    return left


def report(res, info, args):
    s = res["samples"]
    stats = {n: (statistics.median(v), *(statistics.quantiles(v, n=10)[i] for i in (0, 8)))
             for n, v in s.items()}
    floor = stats["floor"][0]
    rows = [(n, *stats[n], stats[n][0] / floor) for n in NAMES if n in stats]
    method = (f"{args.rounds} alternating rounds (shuffled order each round, {args.warmup} warm-up "
              "rounds discarded); create+start+wait+remove of /bin/true, 64 MiB memory, pids 64; "
              "all commands run inside one private mount namespace where "
              f"{UNIFIED} is unmounted (crun refuses hybrid hosts), i.e. a cgroup v1-only view")
    machine = [("nproc", info["nproc"]), ("kernel", info["kernel"]),
               ("cgroup mode (outer)", info["cgroup"]),
               (f"{UNIFIED} favordynmods", info["favordynmods"]),
               ("runc", info["runc"]), ("crun", info["crun"]), ("isolab", info["isolab"])]
    if args.markdown:
        print("| command | median (ms) | p10 (ms) | p90 (ms) | × floor |")
        print("|---|---:|---:|---:|---:|")
        for n, med, p10, p90, ratio in rows:
            print(f"| {n} | {med:.1f} | {p10:.1f} | {p90:.1f} | {ratio:.1f}x |")
        print(f"\nMethod: {method}.\n")
        for k, v in machine:
            print(f"- {k}: {v}")
        for note in res["notes"]:
            print(f"- note: {note}")
    else:
        for n, med, p10, p90, ratio in rows:
            print(f"{n:<7} median {med:6.1f} ms  (p10 {p10:.1f}, p90 {p90:.1f})  {ratio:.1f}x floor")
        print(f"\nmethod: {method}")
        for k, v in machine:
            print(f"{k}: {v}")
        for note in res["notes"]:
            print(f"note: {note}")


def outer(args):
    if os.geteuid() != 0:
        sys.exit("run as root")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "isolab"], cwd=REPO, check=True)
    subprocess.run([ISOLAB, "image", "init"], check=True, stdout=subprocess.DEVNULL)
    mounts = read_mounts()
    uni = [m for m in mounts if m[1] == UNIFIED]
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release, "cgroup": cgroup_mode(mounts),
            "favordynmods": ("not mounted" if not uni else
                             "yes" if "favordynmods" in uni[0][3].split(",") else f"no ({uni[0][3]})"),
            "runc": first_line(["runc", "--version"]), "crun": first_line(["crun", "--version"]),
            "isolab": first_line([ISOLAB, "--version"])}
    tmp = tempfile.mkdtemp(prefix="isolab-bench-")
    # The bundle maps the container's root to an unprivileged uid (isolab's default user
    # namespace), which must be able to reach the rootfs: mkdtemp makes the folder 0700.
    os.chmod(tmp, 0o755)
    try:
        bundle = os.path.join(tmp, "bundle")
        os.mkdir(bundle)
        subprocess.run([ISOLAB, "image", "init"], check=True, stdout=subprocess.DEVNULL)
        record = json.loads(subprocess.run([ISOLAB, "image", "inspect", "busybox"], check=True,
                                           capture_output=True, text=True).stdout)
        # busybox is one layer: its folder is the whole root.
        layer = os.path.join(DATA_ROOT, "layers", record["layers"][0]["diff_id"].split(":", 1)[1])
        subprocess.run(["cp", "-a", layer, os.path.join(bundle, "rootfs")], check=True)
        subprocess.run([ISOLAB, "spec", "--bundle", bundle, *LIMITS, "busybox", "/bin/true"],
                       check=True, stdout=subprocess.DEVNULL)
        cmd = ["unshare", "--mount", "--propagation", "private", sys.executable,
               os.path.abspath(__file__), "--inner", tmp, "--rounds", str(args.rounds),
               "--warmup", str(args.warmup), "--seed", str(args.seed)]
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            sys.exit(f"measuring loop failed (exit {rc})")
        with open(os.path.join(tmp, "results.json")) as f:
            res = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        left = rm_bench_cgroups()
        subprocess.run([ISOLAB, "gc"], stdout=subprocess.DEVNULL)
    if left:
        res["notes"].append("could not remove cgroups: " + "; ".join(left))
    report(res, info, args)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--no-build", action="store_true", help="skip cargo build --release -p isolab")
    p.add_argument("--inner", metavar="TMPDIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    main()
