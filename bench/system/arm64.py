"""The monitor on the Raspberry Pi's userland: Debian bookworm arm64, under qemu-user.

    sudo nice -n 10 .venv/bin/python bench/system/arm64.py   (root: debootstrap, chroot)

1. A Debian bookworm arm64 tree (debootstrap, cached in bench/.cache/system/), copied
   fresh for each run; this checkout copied into it as /home/pi/emotion-edge.
2. Both of the README's installs, run in that tree under qemu-aarch64 (binfmt):
   `./install.sh --local` (the newest wheels pyproject allows) and `./install.sh`, the
   Pi's (apt's numpy 1.24 and the pins of systemd/pi-constraints.txt; systemd is not
   running in a chroot, so the service is only enabled).
3. With each: `check`, `classify --json` on every scene photo and `run --fast` on every
   clip of ../shared/data/video; the same commands on this x86 machine (this Python, and
   a venv with the Pi's pins) give the reference. Photos: the same faces, boxes and
   emotions, scores within x86's own spread between LiteRT's XNNPACK and reference
   kernels (bench/system/stages.py shows where decoding, resizing and kernels part).
   Clips: the same number of tracks and the same dominant emotion in every summary.

Emulator artefact, not a Pi bug: under qemu-user /proc/cpuinfo is the host's (x86) and
LiteRT's CPU detection crashes in allocate_tensors; a Raspberry Pi 4's cpuinfo is bound
over it here. Result: bench/results/system-arm64.md.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (CACHE, RESULTS, ROOT, Results, binfmt, copy_repo, debootstrap,  # noqa: E402
                    need_root, pi_venv, pip_settings, sh)

SHARED = ROOT.parent / "shared" / "data"
TREE_PACKAGES = ["python3", "python3-venv", "python3-numpy", "ca-certificates", "systemd",
                 "sudo", "git"]
PI4_CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
    "CPU revision\t: 3\n\n" for i in range(4)) + "Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
SRC = "/home/pi/emotion-edge"
INSTALLS = {  # name: (install command in SRC, the emotion-edge it gives, extra environment)
    "install.sh --local": ("./install.sh --local", f"{SRC}/.venv/bin/emotion-edge", {}),
    "sudo ./install.sh (Pi pins)": ("./install.sh --no-start", "/opt/emotion-edge/venv/bin/emotion-edge",
                                    {"EMOTION_EDGE_MODELS": "/opt/emotion-edge/models"}),
}


class Chroot:
    """A fresh copy of the cached tree, with /proc (a Pi's cpuinfo), /dev and the data."""

    def __init__(self, tree: Path, reuse: bool = False):
        self.root = CACHE / "arm64-run"
        unmount_below(self.root)  # a run killed half-way left its mounts: never rm through them
        if reuse and self.root.is_dir():   # the last run's tree and installs, this code
            copy_repo(self.root / SRC.lstrip("/"))
            self._mount_all()
            return
        if self.root.exists():
            sh(["rm", "-rf", "--one-file-system", str(self.root)])
        sh(["cp", "-a", str(tree), str(self.root)])
        for here, there in [(Path("/etc/resolv.conf"),) * 2, *pip_settings()]:  # pip reaches PyPI
            (self.root / str(there).lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(here, self.root / str(there).lstrip("/"))
        copy_repo(self.root / SRC.lstrip("/"))
        (self.root / "tmp" / "cpuinfo").write_text(PI4_CPUINFO)
        (self.root / "shared").mkdir()
        self._mount_all()

    def _mount_all(self) -> None:
        self._mount(["-t", "proc", "proc"], "proc")
        self._mount(["--bind", str(self.root / "tmp" / "cpuinfo")], "proc/cpuinfo")
        self._mount(["--rbind", "/dev"], "dev")
        self._mount(["--bind", "-o", "ro", str(SHARED)], "shared")

    def _mount(self, args: list[str], where: str) -> None:
        sh(["mount", *args, str(self.root / where)])

    def run(self, cmd: str, env: dict | None = None, timeout: float = 3600) -> subprocess.CompletedProcess:
        envs = [f"{k}={v}" for k, v in {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                                        "LANG": "C.UTF-8", **(env or {})}.items()]
        return sh(["chroot", str(self.root), "env", "-i", *envs, "bash", "-c", f"cd {SRC} && {cmd}"],
                  check=False, timeout=timeout)

    def close(self) -> None:
        unmount_below(self.root)


def unmount_below(root: Path) -> None:
    root = root.resolve()  # /proc/mounts names real paths; bench/.cache may be a symlink
    below = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
             if line.split()[1].startswith(f"{root}/")]
    for m in sorted(below, key=len, reverse=True):
        subprocess.run(["umount", "-l", m])


def scene_photos() -> list[str]:
    manifest = json.loads((SHARED / "scenes" / "manifest.json").read_text())
    return sorted(n for n in manifest if (SHARED / "scenes" / n).is_file())


def clip_summary(log: str) -> dict:
    """What must match across machines: tracks, and each summary's dominant emotion."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]  # (a crash: none)
    return {"tracks": len({r["track"] for r in records if r["event"] == "face_appeared"}),
            "dominant": [r.get("dominant") for r in records if r["event"] == "summary"]}


def commands(emotion_edge: str, python: str, data: str, logs: str, only: str = "") -> dict[str, str]:
    """The same commands on either machine: name -> shell command printing its result."""
    photos = " ".join(f"{data}/scenes/{n}" for n in scene_photos())
    cmds = {"classify": f"{emotion_edge} classify --json {photos}",
            "stages": f"{python} bench/system/stages.py {photos}"}
    for clip in sorted(p.name for p in (SHARED / "video").iterdir()):
        log = f"{logs}/{clip}"
        cmds[clip] = (f"rm -rf {log} && {emotion_edge} run --fast --mock-gpio --source "
                      f"{data}/video/{clip} --log-dir {log} >/dev/null 2>&1; cat {log}/events.jsonl")
    return {k: c for k, c in cmds.items() if only in k}


def save(outputs: dict[str, str], folder: Path) -> None:
    """Each command's raw output, kept for a look when a row fails."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (folder / name).write_text(text)


def json_lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]  # (qemu, LiteRT: stderr)


def stages(res: Results, label: str, arm: str, x86: str) -> float | None:
    """Where the two machines part, photo by photo; returns x86's own spread between two
    correct int8 kernel sets (XNNPACK, reference), the tolerance for `classify`."""
    a, b = json_lines(arm), json_lines(x86)
    if not a or len(a) != len(b):
        res.add(f"{label}: where the photos part", f"{len(a)} vs {len(b)} lines", False)
        return None
    steps = lambda p, q: max((abs(x - y) for r, t in zip(p, q) for x, y in zip(r, t)), default=0)
    same_crops = [(x, y) for x, y in zip(a, b) if x["crops"] == y["crops"] and x["xnnpack"]]
    ref_same = sum(x["reference"] == y["reference"] for x, y in same_crops)
    spread = max(steps(y["xnnpack"], y["reference"]) for y in b)
    res.add(f"{label}: where the photos part",
            f"decoded pixels differ in {sum(x['pixels'] != y['pixels'] for x, y in zip(a, b))} of "
            f"{len(a)}, face crops in {sum(x['crops'] != y['crops'] for x, y in zip(a, b))}; on "
            f"identical crops XNNPACK's int8 scores differ in "
            f"{sum(x['xnnpack'] != y['xnnpack'] for x, y in same_crops)} of {len(same_crops)} "
            f"(≤ {max((steps(x['xnnpack'], y['xnnpack']) for x, y in same_crops), default=0)} "
            f"steps of 1/256), LiteRT's reference kernels agree in {ref_same} of {len(same_crops)}; "
            f"x86 alone, XNNPACK vs reference kernels: ≤ {spread} steps",
            bool(same_crops) and ref_same == len(same_crops))
    return spread / 256


def compare(res: Results, label: str, arm: dict[str, str], x86: dict[str, str]) -> None:
    tolerance = stages(res, label, arm["stages"], x86["stages"]) if "stages" in arm else None
    if "classify" in arm:   # the same photos, named by their path on each machine
        fa = [x["faces"] for x in json_lines(arm["classify"])]
        fb = [x["faces"] for x in json_lines(x86["classify"])]
        pairs = [(f, g) for x, y in zip(fa, fb) for f, g in zip(x, y)]
        boxes = sum(f["box"] == g["box"] for f, g in pairs)
        emotions = sum(f["emotion"] == g["emotion"] for f, g in pairs)
        delta = max((abs(f["scores"][k] - g["scores"][k]) for f, g in pairs for k in f["scores"]),
                    default=0.0)
        counts = [len(x) for x in fa] == [len(x) for x in fb] and bool(fb)
        res.add(f"{label}: classify --json, {len(scene_photos())} scene photos",
                f"{sum(x == y for x, y in zip(fa, fb))} of {len(fb)} identical; faces "
                f"{sum(map(len, fa))} vs {sum(map(len, fb))}, boxes equal {boxes}, emotions equal "
                f"{emotions} of {len(pairs)}, largest score difference {delta:.4f}"
                + (f" (tolerance {tolerance:.4f})" if tolerance is not None else ""),
                counts and boxes == emotions == len(pairs)
                and delta <= (tolerance + 1e-4 if tolerance is not None else 0.0))
    for clip in (k for k in arm if k not in ("classify", "stages")):  # run --fast
        sa, sx = clip_summary(arm[clip]), clip_summary(x86[clip])
        res.add(f"{label}: run --fast {clip}",
                f"{sa['tracks']} track(s), dominant {'/'.join(map(str, sa['dominant'])) or '-'}"
                + ("" if sa == sx else f"; x86: {sx['tracks']}, {'/'.join(map(str, sx['dominant']))}"),
                sa == sx)


def main() -> int:
    """--reuse: the tree and installs of the last run, upgraded to this checkout;
    --only=TEXT: only the commands whose name has TEXT (e.g. classify or Wolfgang)."""
    reuse = "--reuse" in sys.argv
    only = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")), "")
    need_root()
    res = Results("System check: arm64 userland (Debian bookworm arm64 under qemu-user)")
    binfmt()
    tree = res.timed("debootstrap arm64 tree (cached after the first run)", debootstrap, "arm64", TREE_PACKAGES)
    chroot = Chroot(tree, reuse)
    try:
        arch = chroot.run("uname -m; python3 --version").stdout.split()
        res.add("chroot", " ".join(arch) + " (qemu-aarch64 via binfmt)", arch[:1] == ["aarch64"])
        x86_pi = pi_venv()
        # x86: this checkout's code, run by this Python and by a venv with the Pi's pins.
        references = {"install.sh --local": f"PYTHONPATH={ROOT} {sys.executable}",
                      "sudo ./install.sh (Pi pins)": f"PYTHONPATH={ROOT} {x86_pi}"}
        for label, (install, emotion_edge, env) in INSTALLS.items():
            t = time.monotonic()
            python = str(Path(emotion_edge).with_name("python"))
            p = chroot.run(install, env)   # with --reuse: an upgrade of the last run's
            versions = chroot.run(f"{python} -c 'import numpy, cv2; "
                                  "from importlib.metadata import version as v; print(\"numpy\", "
                                  "numpy.__version__, \"opencv\", cv2.__version__, \"litert\", "
                                  "v(\"ai-edge-litert\"), \"gpiozero\", v(\"gpiozero\"))'").stdout.strip()
            if not res.add(f"{label}", f"{time.monotonic() - t:.0f} s; {versions}" if p.returncode == 0
                           else p.stdout.strip().splitlines()[-1], p.returncode == 0):
                print(p.stdout[-4000:])
                continue
            check = chroot.run(f"{emotion_edge} check --source /shared/video/pyfeat_single_face.mp4", env)
            res.add(f"{label}: check", check.stdout.strip().splitlines()[-1] if check.stdout.strip() else
                    f"exit {check.returncode}", check.returncode == 0)
            if check.returncode:
                print(check.stdout)
            t = time.monotonic()
            arm = {k: chroot.run(c, env).stdout
                   for k, c in commands(emotion_edge, python, "/shared", "/tmp/logs", only).items()}
            res.add(f"{label}: the commands under qemu", f"{time.monotonic() - t:.0f} s")
            x86 = {k: sh(c, check=False, cwd=ROOT).stdout
                   for k, c in commands(f"{references[label]} -m edge", references[label], str(SHARED),
                                        str(CACHE / "x86-logs"), only).items()}
            slug = label.split()[0].strip("./")
            save(arm, CACHE / "outputs" / f"{slug}-arm64")
            save(x86, CACHE / "outputs" / f"{slug}-x86")
            compare(res, label, arm, x86)
    finally:
        chroot.close()
    return res.write(RESULTS / "system-arm64.md",
                     " ".join(["sudo nice -n 10 .venv/bin/python bench/system/arm64.py", *sys.argv[1:]]),
                     notes=__doc__.split("\n\n", 1)[1])


if __name__ == "__main__":
    sys.exit(main())
