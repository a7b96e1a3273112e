"""The service under a real systemd: a Debian 12 VM, installed as a Pi owner would.

    sudo nice -n 10 .venv/bin/python bench/system/systemd_vm.py [--arch=arm64]   (root)

1. A Debian bookworm amd64 (or arm64) tree with systemd, Debian's kernel and ssh (debootstrap,
   cached in bench/.cache/system/); a user `pi` with sudo, this checkout as a git clone in
   /home/pi/emotion-edge, one demo clip in /srv/clips (readable by the service) and one
   in /home/pi (ProtectHome hides it); a raw ext4 image made with `mkfs.ext4 -d`.
2. Booted with `qemu-system-x86_64 -accel tcg -cpu max` (no KVM here), or for arm64
   `qemu-system-aarch64 -M virt -cpu cortex-a72` (a Raspberry Pi 4's cores on qemu's
   generic board, all emulated), user-mode networking, ssh forwarded on a 127.0.0.1 port;
   pip reaches PyPI through it.
3. Over ssh, as pi: the install with no camera, then with a clip, reboot, readiness, the
   watchdog, reload, stop, exposure, a source the sandbox cannot read, a second install,
   an upgrade with an edited config, uninstall. Each is a row of
   bench/results/system-systemd.md (system-systemd-arm64.md).
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (CACHE, RESULTS, ROOT, Results, binfmt, copy_repo,  # noqa: E402
                    debootstrap, ensure_debs, need_root, pip_settings, sh)

SHARED = ROOT.parent / "shared" / "data"
CLIP = SHARED / "video" / "pyfeat_single_face.mp4"
PACKAGES = ["systemd-sysv", "udev", "openssh-server", "sudo", "python3", "python3-venv",
            "python3-numpy", "ca-certificates", "git", "iproute2", "procps", "kmod"]


@dataclass(frozen=True)
class Machine:
    """What differs between the two VMs: Debian's kernel, the emulator and its console."""
    kernel: str
    qemu: tuple[str, ...]
    console: str
    debs: tuple[str, ...]   # the host's packages for it


MACHINES = {
    # No AVX in the x86 VM: Debian 12's qemu 7.2 was the first whose TCG emulates AVX2,
    # and under it the monitor's far pass (LiteRT's XNNPACK kernels on a resized input)
    # corrupted the heap: a segfault a few frames in, with or without systemd, while the
    # same code runs on this host, under qemu-user -cpu max and on arm64. SSE4.2 kernels
    # test the service as well.
    "amd64": Machine("linux-image-cloud-amd64", ("qemu-system-x86_64", "-accel", "tcg", "-cpu",
                                                 "max,-avx,-avx2,-fma,-f16c"),
                     "ttyS0", ("qemu-system-x86",)),
    "arm64": Machine("linux-image-arm64", ("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72"),
                     "ttyAMA0", ("qemu-system-arm", "qemu-user-static", "binfmt-support")),
}
ARCH = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--arch=")), "amd64")
WORK = CACHE / ("vm" if ARCH == "amd64" else f"vm-{ARCH}")
JOURNAL = WORK / "journal.log"   # the unit's journal, for a look when a row fails
KEY = WORK / "id_ed25519"
APP = "emotion-edge"
LOG = f"/var/log/{APP}/events.jsonl"
WATCHDOG_S, RESTART_S, STOP_TIMEOUT_S, SLACK_S = 30, 5, 20, 15


def in_tree(tree: Path, cmd: str) -> None:
    sh(["chroot", str(tree), "bash", "-c", cmd])


def build_image(tree: Path) -> tuple[Path, Path, Path]:
    """A fresh copy of the cached tree made bootable, as a raw ext4 image; + kernel, initrd."""
    t = WORK / "tree"
    if t.exists():
        sh(["rm", "-rf", "--one-file-system", str(t)])
    sh(["cp", "-a", str(tree), str(t)])
    if not KEY.exists():
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(KEY)])
    (t / "etc/hostname").write_text("pi-vm\n")
    (t / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 pi-vm\n")
    (t / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    (t / "etc/resolv.conf").unlink(missing_ok=True)
    (t / "etc/resolv.conf").write_text("nameserver 10.0.2.3\n")          # slirp's DNS
    (t / "etc/systemd/network/10-dhcp.network").write_text("[Match]\nName=e*\n\n[Network]\nDHCP=yes\n")
    for here, there in pip_settings():
        (t / str(there).lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(here, t / str(there).lstrip("/"))
    in_tree(t, "systemctl enable systemd-networkd ssh >/dev/null 2>&1; "
               "useradd -m -s /bin/bash -G sudo pi && echo 'pi ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/pi")
    ssh_dir = t / "home/pi/.ssh"
    ssh_dir.mkdir(mode=0o700)
    shutil.copy(KEY.with_suffix(".pub"), ssh_dir / "authorized_keys")
    # The checkout, as the Pi's owner has it: a git clone (the upgrade is a `git pull`).
    src = t / "home/pi/emotion-edge"
    copy_repo(src)
    sh("git init -q -b main . && git add -A && git -c user.name=pi -c user.email=pi@localhost "
       "commit -qm checkout", cwd=src)
    (t / "srv/clips").mkdir(parents=True)
    shutil.copy(CLIP, t / "srv/clips" / CLIP.name)
    shutil.copy(CLIP, t / "home/pi" / CLIP.name)
    in_tree(t, "chown -R pi:pi /home/pi")
    kernel = sorted((t / "boot").glob("vmlinuz-*"))[-1]
    initrd = sorted((t / "boot").glob("initrd.img-*"))[-1]
    shutil.copy(kernel, WORK / "vmlinuz")
    shutil.copy(initrd, WORK / "initrd.img")
    image = WORK / "disk.raw"
    image.unlink(missing_ok=True)
    sh(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(t), str(image), "6G"])
    return image, WORK / "vmlinuz", WORK / "initrd.img"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VM:
    def __init__(self, machine: Machine, image: Path, kernel: Path, initrd: Path):
        self.port = free_port()
        self.console = open(WORK / "console.log", "w")
        self.proc = subprocess.Popen(
            [*machine.qemu, "-smp", "2", "-m", "2048",
             "-nographic", "-kernel", str(kernel), "-initrd", str(initrd),
             "-append", f"root=/dev/vda rw console={machine.console} net.ifnames=0",
             "-drive", f"file={image},format=raw,if=virtio",
             "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
             "-device", "virtio-net-pci,netdev=n0"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)

    def ssh(self, cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """``cmd`` run as pi; a VM that does not answer in time is exit 255, like ssh's own."""
        args = ["ssh", "-q", "-i", str(KEY), "-p", str(self.port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o",
                "BatchMode=yes", "pi@127.0.0.1", cmd]
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 255, "", f"timed out after {timeout} s")

    def wait_ssh(self, timeout: float = 600) -> float:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if self.ssh("true", timeout=30).returncode == 0:
                return time.monotonic() - t
            time.sleep(2)
        raise RuntimeError(f"no ssh after {timeout} s; see {WORK / 'console.log'}")

    def out(self, cmd: str, timeout: float = 900) -> str:
        return self.ssh(cmd, timeout).stdout.strip()

    def prop(self, name: str) -> str:
        return self.out(f"sudo systemctl show -P {name} {APP}")  # (no D-Bus for users here)

    def wait(self, what, timeout: float, step: float = 0.5) -> float | None:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if what():
                return time.monotonic() - t
            time.sleep(step)
        return None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def first_face(vm: VM) -> datetime | None:
    """When the first face_appeared since the service last started reached the journal (UTC).
    Its own ``ts`` will not do: a video file's events follow the video's timeline, which
    starts when the file was opened, so they can carry a time before READY although they
    were written after it. The console sink's line is stamped by journald as it arrives."""
    lines = vm.out(f"sudo journalctl -u {APP} -b -o short-iso-precise --no-pager").splitlines()
    starts = [i for i, line in enumerate(lines) if " started  version=" in line]
    for line in lines[starts[-1] if starts else 0:]:
        if " appeared " in line and " face #" in line:
            stamp = datetime.fromisoformat(line.split(" ", 1)[0])
            return stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return None


def install(vm: VM, args: str = "") -> tuple[subprocess.CompletedProcess, float]:
    t = time.monotonic()
    p = vm.ssh(f"cd emotion-edge && sudo ./install.sh {args} 2>&1", timeout=1800)
    return p, time.monotonic() - t


def last(text: str) -> str:
    return (text.strip().splitlines() or ["(no output)"])[-1]


def set_source(vm: VM, uri: str) -> None:
    """The owner edits /etc/emotion-edge/config.toml: a clip, looped (no camera here)."""
    vm.ssh(f"sudo sed -i -E '/^\\[source\\]/,/^\\[/{{s|^#? *uri *=.*|uri = \"{uri}\"|;"
           f"s|^#? *loop *=.*|loop = true|}}' /etc/{APP}/config.toml")


def checks(vm: VM, res: Results) -> None:
    # --- the README's install with no camera: whatever the service then does --------------
    p, took = install(vm)
    time.sleep(20)
    state = f"{vm.prop('ActiveState')}/{vm.prop('SubState')}, {vm.prop('NRestarts')} restarts"
    res.add("no camera: sudo ./install.sh", f"exit {p.returncode} in {took:.0f} s: {last(p.stdout)}; "
            f"20 s later the service is {state}")
    print(p.stdout[-3000:])
    vm.ssh(f"sudo systemctl start {APP}", 200)
    time.sleep(20)
    state = f"{vm.prop('ActiveState')}/{vm.prop('SubState')}, {vm.prop('NRestarts')} restarts"
    res.add("no camera: systemctl start, 20 s later", f"{state}; journal: "
            f"{last(vm.out(f'sudo journalctl -u {APP} -n 1 --no-pager -o cat'))}")
    vm.ssh(f"sudo systemctl stop {APP}; sudo systemctl reset-failed {APP}")

    set_source(vm, f"/srv/clips/{CLIP.name}")
    p, took = install(vm)
    res.add("clip source: sudo ./install.sh", f"exit {p.returncode} in {took:.0f} s: {last(p.stdout)}",
            p.returncode == 0 and vm.prop("ActiveState") == "active")
    if p.returncode:
        print(p.stdout[-5000:])
        # what the service said, and how it ended, for whoever reads this run's output
        print(vm.out(f"sudo journalctl -u {APP} -n 80 --no-pager; "
                     f"systemctl show {APP} -p Result,ExecMainStatus,ExecMainCode,NRestarts"))
        # the same run without systemd (the service's user, no hardening): the program
        # or the unit? Each detector kind, 40 frames.
        for kind in ("blazeface-multiscale", "blazeface-full", "blazeface-short"):
            r = vm.ssh(f"cd /tmp && sudo runuser -u {APP} -- env PYTHONFAULTHANDLER=1 EMOTION_EDGE_MODELS=/opt/{APP}/models "
                       f"LOGS_DIRECTORY=/tmp /opt/{APP}/venv/bin/{APP} run --config /etc/{APP}/config.toml "
                       f"--detector {kind} --max-frames 40 2>&1 | tail -40; echo exit ${{PIPESTATUS[0]}}", 600)
            print(f"without systemd, {kind}:", r.stdout.strip()[-4000:])
        return

    # --- boot, readiness, events ------------------------------------------------------------
    boot = vm.out("cat /proc/sys/kernel/random/boot_id")
    vm.ssh("sudo systemctl reboot")
    t = time.monotonic()
    vm.wait(lambda: vm.ssh("cat /proc/sys/kernel/random/boot_id", 30).stdout.strip() not in ("", boot), 600, 2)
    up = time.monotonic() - t
    active = vm.wait(lambda: vm.prop("ActiveState") == "active", 120)
    res.add("after a reboot", f"ssh after {up:.0f} s, service active {active:.0f} s later"
            if active is not None else "not active 120 s after boot", active is not None)
    # The daemon's own start-up (exec to READY=1) on this machine: an emulated arm64 is many
    # times slower than amd64 or a Pi, and a restart includes one.
    started, ready_us = (int(vm.prop(k) or 0) for k in ("ExecMainStartTimestampMonotonic",
                                                          "ActiveEnterTimestampMonotonic"))
    startup = max(0.0, (ready_us - started) / 1e6)
    # Type=notify: systemd enters "active" when the daemon sends READY=1.
    ready = vm.out(f"sudo systemctl show --timestamp=us+utc -P ActiveEnterTimestamp {APP}")
    ready_t = datetime.strptime(ready.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S.%f UTC") if ready else None
    vm.wait(lambda: first_face(vm) is not None, 120, 2)
    face = first_face(vm)
    res.add("READY=1 before the first event", f"READY {ready_t:%H:%M:%S.%f}, first face_appeared "
            f"{face:%H:%M:%S.%f}" if face and ready_t else f"READY {ready or '-'}, no face event",
            bool(face and ready_t and ready_t < face))
    # As the Pi's owner, without sudo: the log so far (following it would wait for events).
    tail = vm.ssh(f"timeout 20 /opt/{APP}/venv/bin/{APP} tail --from-start --until-eof {LOG}", 60)
    res.add(f"README: {APP} tail {LOG} (as pi)", f"{len(tail.stdout.splitlines())} lines"
            if tail.stdout.strip() else last(tail.stderr), bool(tail.stdout.strip()))

    # --- the watchdog: a frozen daemon is killed and restarted ------------------------------
    pid, restarts = vm.prop("MainPID"), int(vm.prop("NRestarts"))
    vm.ssh(f"sudo kill -STOP {pid}")
    limit = WATCHDOG_S + RESTART_S + round(startup) + SLACK_S
    back = vm.wait(lambda: int(vm.prop("NRestarts") or 0) > restarts
                   and vm.prop("ActiveState") == "active", limit + 60)
    why = vm.out(f"sudo journalctl -u {APP} -n 30 --no-pager -o cat | grep -m1 -i watchdog")
    budget = (f"limit {limit} s: WatchdogSec {WATCHDOG_S} + RestartSec {RESTART_S} + start-up "
              f"{startup:.0f} + slack {SLACK_S}")
    res.add("watchdog: SIGSTOP, then active again", f"{back:.0f} s ({budget}): {why}"
            if back is not None else f"not active again within {limit + 60} s ({budget}): {why}",
            back is not None and back <= limit)

    # --- reload reopens the log; stop is quick and `stopped` is last -------------------------
    vm.ssh(f"sudo mv {LOG} {LOG}.moved && sudo systemctl reload {APP}")
    fresh = vm.wait(lambda: vm.out(f"sudo test -e {LOG} && echo yes") == "yes", 30)
    res.add("reload (SIGHUP) reopens the log", f"new {LOG} after {fresh:.1f} s" if fresh is not None
            else "no new log file", fresh is not None)
    t = time.monotonic()
    vm.ssh(f"sudo systemctl stop {APP}")
    took = time.monotonic() - t
    end = vm.out(f"sudo tail -n1 {LOG}")
    res.add("stop", f"{took:.1f} s (TimeoutStopSec {STOP_TIMEOUT_S}); last line: {end[:90]}",
            took < STOP_TIMEOUT_S and '"event":"stopped"' in end.replace(" ", ""))
    vm.ssh(f"sudo systemctl start {APP}")
    level = last(vm.out(f"sudo systemd-analyze security {APP} --no-pager | tail -1"))
    score = float(level.split(":")[1].split()[0]) if ":" in level else 99
    res.add("systemd-analyze security (running unit)", level, score <= 1.0)

    # --- a source the sandbox cannot read (ProtectHome) --------------------------------------
    set_source(vm, f"/home/pi/{CLIP.name}")
    check = vm.ssh(f"sudo runuser -u {APP} -- env EMOTION_EDGE_MODELS=/opt/{APP}/models "
                   f"LOGS_DIRECTORY=/var/log/{APP} CONFIGURATION_DIRECTORY=/etc/{APP} /opt/{APP}/venv/bin/{APP} check "
                   f"--config /etc/{APP}/config.toml")  # what install.sh runs
    res.add("unreadable source: check as the service sees it", next(
        (line for line in check.stdout.splitlines() if "camera" in line or "source" in line),
        last(check.stdout)), check.returncode != 0)
    vm.ssh(f"sudo systemctl restart {APP}; sleep 15")
    journal = vm.out(f"sudo journalctl -u {APP} --since=-20s --no-pager -o cat")
    lines = [x for x in journal.splitlines() if CLIP.name in x or "Traceback" in x]
    res.add("unreadable source: the journal", f"{len(lines)} line(s) naming it, "
            f"{journal.count('Traceback')} tracebacks: {lines[0][:120] if lines else '-'}",
            bool(lines) and "Traceback" not in journal)
    set_source(vm, f"/srv/clips/{CLIP.name}")

    # --- a second install, an upgrade keeping the edited config, uninstall -------------------
    vm.ssh(f"sudo systemctl reset-failed {APP}; sudo systemctl restart {APP}")
    p, took = install(vm)
    steps = [x for x in p.stdout.splitlines() if x.startswith("==>")]
    busy = [x for x in steps if "nothing to do" not in x and "kept your" not in x]
    res.add("second install", f"{took:.0f} s, {len(steps) - len(busy)} of {len(steps)} steps "
            f"'nothing to do'" + (f"; {busy}" if busy else ""), p.returncode == 0 and not busy)
    before = vm.out(f"sudo sha256sum /etc/{APP}/config.toml")
    vm.ssh("git clone -q emotion-edge upstream && cd upstream && echo '# upgrade' >> edge/__init__.py"
           " && git -c user.name=pi -c user.email=pi@localhost commit -qam upgrade")
    vm.ssh("cd emotion-edge && git pull -q ../upstream main")
    p, took = install(vm)
    kept = vm.out(f"sudo sha256sum /etc/{APP}/config.toml") == before
    res.add("upgrade: git pull && sudo ./install.sh", f"exit {p.returncode} in {took:.0f} s; edited "
            f"config {'kept' if kept else 'CHANGED'}; service {vm.prop('ActiveState')}",
            p.returncode == 0 and kept and vm.prop("ActiveState") == "active")
    save_journal(vm)   # while the unit still exists: after --uninstall, journalctl -u shows nothing
    p, _ = install(vm, "--uninstall")
    gone = vm.out(f"for f in /etc/systemd/system/{APP}.service /opt/{APP} /usr/local/bin/{APP}; "
                  f"do test -e $f -o -L $f && echo $f; done")
    kept = vm.out(f"sudo ls /etc/{APP}/config.toml {LOG}* | wc -l")
    res.add("--uninstall", f"exit {p.returncode}; left behind: {gone or 'nothing'}; config and logs "
            f"kept ({kept} files); service {vm.prop('LoadState')}",
            p.returncode == 0 and not gone and vm.prop("LoadState") == "not-found")


def save_journal(vm: VM) -> None:
    JOURNAL.write_text(vm.out(f"sudo journalctl -u {APP} --no-pager -o short-precise", 120))


def main() -> int:
    need_root()
    if ARCH not in MACHINES:
        sys.exit(f"{sys.argv[0]}: --arch={ARCH}: use one of {', '.join(MACHINES)}")
    machine = MACHINES[ARCH]
    ensure_debs(*machine.debs, "debootstrap", "e2fsprogs", "openssh-client")
    if ARCH == "arm64":
        binfmt()   # debootstrap's second stage and the set-up below run arm64 programs
    res = Results(f"System check: the service under a real systemd (Debian 12 {ARCH} VM, qemu TCG)")
    WORK.mkdir(parents=True, exist_ok=True)
    JOURNAL.unlink(missing_ok=True)
    tree = res.timed(f"debootstrap {ARCH} tree (cached after the first run)", debootstrap, ARCH,
                     [*PACKAGES, machine.kernel], tag="" if ARCH == "amd64" else "vm")
    image, kernel, initrd = res.timed("bootable image (mkfs.ext4 -d)", build_image, tree)
    vm = VM(machine, image, kernel, initrd)
    try:
        res.add("boot to ssh", f"{vm.wait_ssh():.0f} s; {vm.out('systemctl --version | head -1')}")
        checks(vm, res)
    finally:
        if vm.proc.poll() is None:
            if not JOURNAL.exists():   # the run stopped before the end
                save_journal(vm)
            vm.ssh("sudo systemctl poweroff", 30)
        vm.close()
    suffix = "" if ARCH == "amd64" else f"-{ARCH}"
    return res.write(RESULTS / f"system-systemd{suffix}.md",
                     " ".join(["sudo nice -n 10 .venv/bin/python bench/system/systemd_vm.py", *sys.argv[1:]]),
                     notes=__doc__.split("\n\n", 1)[1])


if __name__ == "__main__":
    sys.exit(main())
