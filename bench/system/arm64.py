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
   a venv with the Pi's pins) give the reference: photos must be byte-identical, clips
   must give the same number of tracks and the same dominant emotion in every summary.

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
from common import (CACHE, RESULTS, ROOT, Results, copy_repo, debootstrap,  # noqa: E402
                    ensure_debs, need_root, pi_venv, pip_settings, sh)

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


def binfmt() -> None:
    """qemu-aarch64 registered with the kernel, so the chroot's programs simply run."""
    ensure_debs("qemu-user-static", "binfmt-support", "debootstrap")
    if not Path("/proc/sys/fs/binfmt_misc/status").exists():
        sh("mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        sh("update-binfmts --enable qemu-aarch64")


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


def commands(emotion_edge: str, data: str, logs: str, only: str = "") -> dict[str, str]:
    """The same commands on either machine: name -> shell command printing its result."""
    photos = " ".join(f"{data}/scenes/{n}" for n in scene_photos())
    cmds = {"classify": f"{emotion_edge} classify --json {photos}"}
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


def compare(res: Results, label: str, arm: dict[str, str], x86: dict[str, str]) -> None:
    # The same photos, named by their path on each machine; only the JSON lines (LiteRT
    # and qemu also talk on stderr).
    a = [x.replace('"/shared/', '"DATA/') for x in arm.get("classify", "").splitlines() if x.startswith("{")]
    b = [x.replace(f'"{SHARED}/', '"DATA/') for x in x86.get("classify", "").splitlines() if x.startswith("{")]
    if "classify" in arm:
        fa, fb = [json.loads(x)["faces"] for x in a], [json.loads(x)["faces"] for x in b]
        same = sum(x == y for x, y in zip(a, b))
        labels = [(f["emotion"], g["emotion"]) for x, y in zip(fa, fb) for f, g in zip(x, y)]
        boxes = sum(f["box"] == g["box"] for x, y in zip(fa, fb) for f, g in zip(x, y))
        delta = max((abs(f["scores"][k] - g["scores"][k]) for x, y in zip(fa, fb)
                     for f, g in zip(x, y) for k in f["scores"]), default=0.0)
        res.add(f"{label}: classify --json, {len(scene_photos())} scene photos",
                f"{same} of {len(b)} lines byte-identical to x86; faces {sum(map(len, fa))} vs "
                f"{sum(map(len, fb))}, boxes equal {boxes}, emotions equal "
                f"{sum(x == y for x, y in labels)} of {len(labels)}, largest score difference "
                f"{delta:.4f}", a == b and bool(a))
    for clip in (k for k in arm if k != "classify"):  # run --fast
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
        references = {"install.sh --local": f"PYTHONPATH={ROOT} {sys.executable} -m edge",
                      "sudo ./install.sh (Pi pins)": f"PYTHONPATH={ROOT} {x86_pi} -m edge"}
        for label, (install, emotion_edge, env) in INSTALLS.items():
            t = time.monotonic()
            p = chroot.run(install, env)   # with --reuse: an upgrade of the last run's
            versions = chroot.run(f"{Path(emotion_edge).with_name('python')} -c 'import numpy, cv2; "
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
                   for k, c in commands(emotion_edge, "/shared", "/tmp/logs", only).items()}
            res.add(f"{label}: the commands under qemu", f"{time.monotonic() - t:.0f} s")
            x86 = {k: sh(c, check=False, cwd=ROOT).stdout
                   for k, c in commands(references[label], str(SHARED), str(CACHE / "x86-logs"), only).items()}
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
