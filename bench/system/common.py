"""What both system checks share: root, Debian packages, cached debootstrap trees, timing,
and the result table.

The checks build everything from Debian's archive (the mirror this machine's apt uses) and
PyPI, nothing else. debootstrap trees are cached in bench/.cache/system/ (git-ignored):
delete a folder there to rebuild it from scratch.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench" / ".cache" / "system"
RESULTS = ROOT / "bench" / "results"
SUITE = "bookworm"
# What the system checks prove: a change to any of these needs them rerun (their result
# files carry this fingerprint; tests/test_system_results.py compares it with the tree).
INPUTS = ("install.sh", "systemd/", "edge/sources/", "pyproject.toml")


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit(f"{sys.argv[0]}: needs root (debootstrap, chroot, mounts): run it with sudo")
    # kill / Ctrl-C still unmount the chroot and stop the VM (the checks' finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def mirror() -> str:
    """The Debian mirror this machine's apt already uses (the only archive we may reach)."""
    for f in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        text = f.read_text() if f.is_file() else ""
        for url in re.findall(r"(https?://\S+/debian)/?(?:\s|$)", text):
            return url
    return "http://deb.debian.org/debian"


def sh(cmd: str | list[str], *, check: bool = True, timeout: float | None = None,
       log=None, **kw) -> subprocess.CompletedProcess:
    """Run a command, echo it, return its output (text; stderr folded into stdout)."""
    args = cmd if isinstance(cmd, list) else ["bash", "-c", cmd]
    print("+", cmd if isinstance(cmd, str) else shlex.join(cmd), flush=True)
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if log is not None:
        log.write(p.stdout)
        log.flush()
    if check and p.returncode != 0:
        tail = "\n".join(p.stdout.splitlines()[-30:])
        raise RuntimeError(f"exit {p.returncode}: {cmd}\n{tail}")
    return p


def ensure_debs(*pkgs: str) -> None:
    """Install the host's Debian packages the check needs (only the missing ones)."""
    missing = [p for p in pkgs if subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", p], capture_output=True,
        text=True).stdout != "installed"]
    if missing:
        sh("apt-get update -q")
        sh(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
            "--no-install-recommends", *missing])


def binfmt() -> None:
    """qemu-aarch64 registered with the kernel, so arm64 programs simply run (a chroot,
    debootstrap's second stage)."""
    ensure_debs("qemu-user-static", "binfmt-support", "debootstrap")
    if not Path("/proc/sys/fs/binfmt_misc/status").exists():
        sh("mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        sh("update-binfmts --enable qemu-aarch64")


def debootstrap(arch: str, include: list[str], variant: str = "minbase", tag: str = "") -> Path:
    """A cached Debian bookworm tree for ``arch`` with ``include`` installed (``tag`` keeps
    trees of the same arch with different packages apart)."""
    name = f"{SUITE}-{arch}-{variant}" + (f"-{tag}" if tag else "")
    tree, stamp = CACHE / name, CACHE / f"{name}.done"
    want = " ".join(sorted(include))
    if stamp.is_file() and stamp.read_text() == want:
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    tree.parent.mkdir(parents=True, exist_ok=True)
    sh(["debootstrap", f"--arch={arch}", f"--variant={variant}",
        f"--include={','.join(include)}", SUITE, str(tree), mirror()], timeout=3600)
    stamp.write_text(want)
    return tree


def pi_venv(python: str = "/usr/bin/python3") -> Path:
    """The python of a venv made as the Pi's install makes it: Debian's Python, apt's
    numpy where python3-numpy is installed (--system-site-packages), the pins of
    systemd/pi-constraints.txt, no host extra (plus the test tools). Cached until the
    pins change."""
    import hashlib
    import tomllib
    constraints = ROOT / "systemd" / "pi-constraints.txt"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + project["optional-dependencies"]["test"]
    key = hashlib.sha256((constraints.read_text() + "\n".join(pins)).encode()).hexdigest()
    venv = ROOT / "bench" / ".cache" / f"pi-venv-{key[:12]}"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        sh([python, "-m", "venv", "--system-site-packages", str(venv)])
        sh([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
            "--disable-pip-version-check", "--constraint", str(constraints), *pins])
        (venv / ".complete").touch()
    return venv / "bin" / "python"


def pip_settings() -> list[tuple[Path, Path]]:
    """This machine's pip settings and the CA bundle they name (a TLS-inspecting proxy's
    CA lives there on some networks): copied into a tree or VM so pip reaches PyPI as it
    does here. Pairs of (file here, path there)."""
    files = [Path("/etc/pip.conf"), Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))]
    return [(f, f) for f in files if f.is_file()]


def repo_files() -> list[str]:
    """The project as a clone has it: tracked and new (not ignored) files."""
    out = sh(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"]).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def fingerprint() -> str:
    """sha256 over the paths and contents of the INPUTS files, as a clone has them."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(f for f in repo_files() if f.startswith(INPUTS)):
        h.update(f.encode() + b"\0" + (ROOT / f).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def copy_repo(dest: Path) -> None:
    """A copy of the checkout at ``dest`` (what `git clone` would give, plus local edits)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in repo_files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)


@dataclass
class Results:
    """Rows of (what, result, ok), printed as they come and written as a markdown table."""
    title: str
    rows: list[tuple[str, str, bool]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    inputs: str = field(default_factory=fingerprint)   # the tree this run checks

    def add(self, what: str, result: str, ok: bool = True) -> bool:
        self.rows.append((what, result, ok))
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {result}", flush=True)
        return ok

    def timed(self, what: str, fn, *args, **kw):
        t = time.monotonic()
        out = fn(*args, **kw)
        self.add(what, f"{time.monotonic() - t:.0f} s")
        return out

    def write(self, path: Path, command: str, notes: str = "") -> int:
        failed = sum(not ok for *_, ok in self.rows)
        lines = [f"# {self.title}", "",
                 f"`{command}` ({time.strftime('%Y-%m-%d', time.gmtime())}, "
                 f"{time.monotonic() - self.t0:.0f} s in all, {os.cpu_count()} CPUs): "
                 f"{len(self.rows) - failed} of {len(self.rows)} checks passed.", "",
                 f"Inputs ({', '.join(INPUTS)}): `{self.inputs}`", "",
                 "| check | result | |", "|---|---|---|"]
        lines += [f"| {w} | {r.replace('|', '/')} | {'ok' if ok else '**FAIL**'} |"
                  for w, r, ok in self.rows]
        if notes:
            lines += ["", notes.strip()]
        path.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 1 if failed else 0
