#!/usr/bin/env python3
"""What a user namespace costs, and idmapped layers versus an owned copy (issue 7).

1. `isolab run IMAGE true` with the host's user namespace (`--user host`: one plain overlay
   mount) versus the default (a user namespace, each layer cloned and idmapped, the overlay made
   with the new mount API and attached inside), for busybox and debian: hyperfine, 60 runs
   each after 3 warm-ups; the ratio is the figure.
2. The other way, an owned copy per container (docker's userns-remap, podman without idmap):
   copy the image's layers and chown every entry to the container's range. Timed with
   hyperfine as `cp -a LAYERS DIR && chown -R -h B:B DIR` (a shift is one lchown per entry,
   the same work as this chown), then the copy is removed (outside the timing, in --cleanup).
   The disk used per container is the image size again.

Needs root, hyperfine, the release binary (`cargo build --release -p isolab`) and both images
(`isolab image bootstrap debian`). Usage: python3 bench/userns.py
"""
import json, os, shutil, subprocess, tempfile

ISOLAB = os.environ.get("ISOLAB", "/work/main/target/release/isolab")
B = 1_000_000_000


def hyperfine(cmds, names, cleanup=None):
    out = tempfile.mktemp(suffix=".json")
    args = ["hyperfine", "-N", "--warmup", "3", "--runs", "60", "--export-json", out]
    if cleanup:
        args += ["--cleanup", cleanup]
    for n, c in zip(names, cmds):
        args += ["-n", n, c]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    res = json.load(open(out))["results"]
    os.unlink(out)
    return {r["command"]: (r["median"] * 1000, r["stddev"] * 1000) for r in res}


def layers(image):
    info = json.loads(subprocess.run([ISOLAB, "image", "inspect", image], check=True,
                                     capture_output=True, text=True).stdout)
    root = os.environ.get("ISOLAB_DATA_ROOT", "/var/lib/isolab")
    return [os.path.join(root, "layers", l["diff_id"].split(":")[1]) for l in info["layers"]]


def du(paths):
    return sum(int(subprocess.run(["du", "-sb", p], capture_output=True, text=True).stdout.split()[0])
               for p in paths)


for image in ["busybox", "debian"]:
    r = hyperfine([f"{ISOLAB} run --user host {image} true", f"{ISOLAB} run {image} true"],
                  ["host", "userns"])
    (h, hs), (u, us) = r["host"], r["userns"]
    print(f"{image}: run true, host user ns {h:.1f} ms (±{hs:.1f}), own user ns with idmapped "
          f"layers {u:.1f} ms (±{us:.1f}): {u / h:.2f}x, +{u - h:.1f} ms")
    src = " ".join(layers(image))
    dest = tempfile.mkdtemp(prefix="owned-")
    copy = f"sh -c 'cp -a {src} {dest}/ && chown -R -h {B}:{B} {dest}'"
    r = hyperfine([copy], ["copy"], cleanup=f"sh -c 'rm -rf {dest}/*'")
    c, cs = r["copy"]
    print(f"{image}: owned copy of its layers {c:.1f} ms (±{cs:.1f}), "
          f"{du(layers(image)) / 1e6:.1f} MB more disk per container")
    shutil.rmtree(dest, ignore_errors=True)
