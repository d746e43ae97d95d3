#!/usr/bin/env python3
"""Regenerates scripts/hot-functions.txt: the functions rrun runs in a
container's lifecycle, which build.rs hands to the linker
(--symbol-ordering-file) so that they sit together at the start of .text.

Why: every rrun process maps its code by page faults, and the kernel maps
the pages around each fault. Spread over 2.9 MB of text, the ~650 KB a
lifecycle runs touch most of it; packed together, fewer faults (and fewer
resident pages) per process. Measured in docs/bench.md (Profile).

How: build an unstripped release rrun (same profile, so the same symbol
names), put a uprobe on the entry of each of its functions (tracefs; needs
root), run the lifecycle workload, read which probes were hit
(uprobe_profile). Phases are written in order: plain lifecycle first, then
exec/ps/pause/update and friends, so the commonest path is the densest.

Functions whose first instruction is not in SAFE_FIRST get no probe: on
the kernel this was made on, a probe on some entry instructions (SSE moves,
a bare ret) corrupted the probed process. Such functions (about 2%) keep
their default place.

Usage (as root, from the repository root, with bundles/busybox built):
    scripts/hot-order.py   # writes scripts/hot-functions.txt (~7 min: removing
                           # thousands of uprobes waits a grace period each)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "scripts", "hot-functions.txt")
TARGET = os.path.join(REPO, "target", "hot-order")
BIN = os.path.join(TARGET, "x86_64-unknown-linux-gnu", "release", "rrun")
GROUP = "rrunhot"
SAFE_FIRST = set(
    "push mov sub cmp test xor lea cmpb movabs cmpl cmpq jmp endbr64 movzbl "
    "call add movzwl and or shr cmpw movq imul testb nop movl movb movw neg "
    "inc dec sar".split()
)


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def tracefs():
    """tracefs's mount point, and whether this script mounted it."""
    for line in open("/proc/mounts"):
        dev, mnt, fstype = line.split()[:3]
        if fstype == "tracefs":
            return mnt, False
    mnt = tempfile.mkdtemp(prefix="tracefs.")
    sh("mount", "-t", "tracefs", "none", mnt)
    return mnt, True


def functions(binary):
    """(address, names) of each function, and the text segment's
    address-to-file-offset delta, which uprobes need."""
    first = {}
    lines = sh("objdump", "-d", "--no-show-raw-insn", binary).splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.endswith(">:"):
            insn = lines[i + 1].split("\t")
            first[int(line.split()[0], 16)] = insn[1].split()[0] if len(insn) > 1 else "?"
    funcs = {}
    for line in sh("nm", "--defined-only", "-S", binary).splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            funcs.setdefault(int(f[0], 16), []).append(f[3])
    delta = None
    for line in sh("readelf", "-lW", binary).splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:8]:
            delta = int(f[2], 16) - int(f[1], 16)
    safe = [a for a in sorted(funcs) if first.get(a) in SAFE_FIRST]
    return safe, funcs, delta


def workload(rrun, root, bundle, phase):
    def r(*args, check=True):
        subprocess.run([rrun, "--root", root, *args], check=check, stdout=subprocess.DEVNULL)

    if phase == "lifecycle":
        for i in range(3):
            r("run", "-b", bundle, f"a{i}")
            r("create", "-b", bundle, f"c{i}")
            r("state", f"c{i}")
            r("start", f"c{i}")
            r("state", f"c{i}")
            r("delete", "-f", f"c{i}")
            r("create", "-b", bundle, f"k{i}")
            r("kill", f"k{i}", "KILL")
            r("delete", "-f", f"k{i}")
    else:
        for i in range(2):
            r("--log", os.path.join(root, "log.json"), "--log-format", "json",
              "create", "-b", bundle, f"s{i}")
            r("start", f"s{i}")
            r("exec", f"s{i}", "/bin/true")
            r("exec", "-d", f"s{i}", "sleep", "1")
            r("ps", f"s{i}")
            r("list")
            r("list", "-f", "json")
            r("pause", f"s{i}")
            r("resume", f"s{i}")
            r("events", "--stats", f"s{i}")
            r("update", "--pids-limit", "100", "--memory", "100M", f"s{i}")
            r("kill", f"s{i}", "TERM")
            r("delete", "-f", f"s{i}")


def main():
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET, CARGO_PROFILE_RELEASE_STRIP="false")
    subprocess.run(["cargo", "build", "--release", "--bin", "rrun"], check=True, cwd=REPO, env=env)
    addrs, funcs, delta = functions(BIN)
    tr, mounted = tracefs()
    events = os.path.join(tr, "uprobe_events")
    enable = os.path.join(tr, "events", GROUP, "enable")
    work = tempfile.mkdtemp(prefix="rrun-hot.")
    bundle = os.path.join(work, "bundle")
    shutil.copytree(os.path.join(REPO, "bundles", "busybox"), bundle, symlinks=True)
    with open(os.path.join(REPO, "bundles", "busybox", "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False

    def program(*args):
        config["process"]["args"] = list(args)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f)

    program("/bin/true")
    order, seen = [], set()
    try:
        # One probe per write: the kernel parses each write on its own.
        fd = os.open(events, os.O_WRONLY | os.O_APPEND)
        for i, a in enumerate(addrs):
            os.write(fd, f"p:{GROUP}/f{i} {BIN}:0x{a - delta:x}\n".encode())
        os.close(fd)
        with open(enable, "w") as f:
            f.write("1")
        for phase in ("lifecycle", "more"):
            if phase == "more":
                program("sleep", "3600")
            workload(BIN, os.path.join(work, "state"), bundle, phase)
            hit = []
            for line in open(os.path.join(tr, "uprobe_profile")):
                _, event, count = line.split()
                if int(count) > 0:
                    hit.append(addrs[int(event[1:])])
            new = sorted(a for a in hit if a not in seen)
            seen.update(new)
            order += [funcs[a][0] for a in new]
    finally:
        if os.path.exists(enable):
            with open(enable, "w") as f:
                f.write("0")
        os.close(os.open(events, os.O_WRONLY | os.O_TRUNC))
        # Containers a failed step left behind go with their state root.
        state = os.path.join(work, "state")
        for cid in os.listdir(state) if os.path.isdir(state) else []:
            subprocess.run([BIN, "--root", state, "delete", "-f", cid], capture_output=True)
        if mounted:
            subprocess.run(["umount", tr])
            os.rmdir(tr)
        shutil.rmtree(work, ignore_errors=True)
    with open(OUT, "w") as f:
        f.write("\n".join(order) + "\n")
    print(f"{OUT}: {len(order)} functions", file=sys.stderr)


if __name__ == "__main__":
    main()
