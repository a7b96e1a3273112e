"""install.sh: the Pi install into a temp --root, the --local flow with a stand-in python,
the systemd unit's hardening score, and shellcheck.

Nothing here touches the real system, the network or pip: --root writes files under a
temp folder and only prints the commands (apt-get, useradd, systemctl, pip...) it would
run; those printed commands are what the tests check.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = "emotion-edge"


# --- helpers ---------------------------------------------------------------------------

@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A copy of what install.sh installs from, so tests can edit it freely."""
    s = tmp_path / "src"
    s.mkdir()
    for name in ["install.sh", "pyproject.toml", "README.md"]:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, s / name)
    shutil.copytree(ROOT / "edge", s / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "systemd", s / "systemd")
    (s / "docs").mkdir()
    shutil.copy2(ROOT / "docs" / "raspberry-pi.md", s / "docs" / "raspberry-pi.md")
    (s / "models").mkdir()
    for name in ["emotion_int8.tflite", "emotion_int8.json"]:
        shipped = ROOT / "models" / name
        if shipped.exists():
            shutil.copy2(shipped, s / "models" / name)
        else:  # not committed yet in this checkout: any bytes do for copying
            (s / "models" / name).write_bytes(b"stand-in " + name.encode())
    from edge.detectors.registry import model_files
    for m in model_files().values():   # detector files tracked in git: a clone has them
        if m.in_repository:
            shutil.copy2(ROOT / "models" / m.name, s / "models" / m.name)
    return s


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


def install(src: Path, *args: str, env: dict[str, str] | None = None,
            expect: int = 0) -> subprocess.CompletedProcess:
    # --root installs nothing, so the program that reads the config (config --get,
    # network_dropin.py) runs on this python, which has the device's packages.
    proc = subprocess.run(["bash", str(src / "install.sh"), *args], capture_output=True,
                          text=True, timeout=600,    # a bound for a hang, not a speed test
                          env={**os.environ, "EMOTION_EDGE_PYTHON": sys.executable, **(env or {})})
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def would_run(out: str) -> list[list[str]]:
    return [shlex.split(line.split("would run: ", 1)[1])
            for line in out.splitlines() if "would run: " in line]


def find(cmds: list[list[str]], *prefix: str) -> int:
    """Index of the first command starting with ``prefix``."""
    for i, cmd in enumerate(cmds):
        if cmd[:len(prefix)] == list(prefix):
            return i
    raise AssertionError(f"no command {' '.join(prefix)!r} in {cmds}")


def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under ``top`` with its type, mode, content hash and mtime."""
    out = {}
    for p in sorted(top.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            out[str(p.relative_to(top))] = ("link", os.readlink(p))
        elif p.is_dir():
            out[str(p.relative_to(top))] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            out[str(p.relative_to(top))] = ("file", stat.S_IMODE(st.st_mode),
                                            hashlib.sha256(p.read_bytes()).hexdigest(),
                                            st.st_mtime_ns)
    return out


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# --- system install into --root ----------------------------------------------------------

def test_root_install_writes_the_files(src, root):
    install(src, "--root", str(root))
    unit = root / "etc/systemd/system/emotion-edge.service"
    assert unit.read_bytes() == (src / "systemd/emotion-edge.service").read_bytes()
    assert mode(unit) == 0o644
    for name in ["emotion_int8.tflite", "emotion_int8.json"]:
        f = root / "opt/emotion-edge/models" / name
        assert f.read_bytes() == (src / "models" / name).read_bytes() and mode(f) == 0o644
    link = root / "usr/local/bin/emotion-edge"
    assert os.readlink(link) == "/opt/emotion-edge/venv/bin/emotion-edge"
    assert (root / "opt/emotion-edge/docs/raspberry-pi.md").exists()
    # A detector file the repository ships (YuNet) is copied like the emotion model.
    from edge.detectors.registry import model_files
    shipped = {f"opt/emotion-edge/models/{m.name}" for m in model_files().values()
               if m.in_repository}
    assert shipped
    for name in shipped:
        assert (root / name).read_bytes() == (src / "models" / Path(name).name).read_bytes()
    # Nothing else: no venv was really created, no logs, no stray files.
    files = {k for k, v in snapshot(root).items() if v[0] != "dir"}
    assert files == {
        "etc/emotion-edge/config.toml", "etc/emotion-edge/config.toml.default",
        "etc/systemd/system/emotion-edge.service",
        "opt/emotion-edge/models/emotion_int8.tflite", "opt/emotion-edge/models/emotion_int8.json",
        "opt/emotion-edge/docs/raspberry-pi.md", "opt/emotion-edge/docs/systemd.md",
        "usr/local/bin/emotion-edge", *shipped,
    }


def test_config_is_the_default_with_every_key_commented(src, root):
    install(src, "--root", str(root))
    cfg = root / "etc/emotion-edge/config.toml"
    assert mode(cfg) == 0o640  # may hold a camera password; group emotion-edge reads it
    assert mode(root / "etc/emotion-edge/config.toml.default") == 0o644
    text = cfg.read_text()
    default = (src / "edge/default.toml").read_text()
    parsed = tomllib.loads(text)
    # Every section is there and no key is set, so the daemon keeps its built-in defaults
    # and systemd's log folder (a copied `dir = "logs"` would override $LOGS_DIRECTORY).
    assert set(parsed) == set(tomllib.loads(default))
    def unset(table):  # sub-sections ([detector.far]) are tables, with no key set either
        return all(isinstance(v, dict) and unset(v) for v in table.values())
    assert unset(parsed), parsed
    # It ends with the shipped defaults line by line, each setting behind "# ".
    body = text.splitlines()[-len(default.splitlines()):]
    key = re.compile(r"^[A-Za-z0-9_]+\s*=")
    assert body == [("# " + line) if key.match(line) else line for line in default.splitlines()]
    assert sum(line.startswith("# ") and bool(key.match(line[2:])) for line in body) >= 10


def test_root_install_prints_every_system_command(src, root):
    out = install(src, "--root", str(root)).stdout
    cmds = would_run(out)
    apt = cmds[find(cmds, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install")]
    assert {"--no-install-recommends", "python3-venv", "python3-numpy", "python3-picamera2",
            "python3-lgpio"} <= set(apt)
    assert find(cmds, "apt-get", "update") < find(cmds, "env", "DEBIAN_FRONTEND=noninteractive")
    find(cmds, "groupadd", "--system", "video")
    find(cmds, "groupadd", "--system", "gpio")
    useradd = cmds[find(cmds, "useradd")]
    assert useradd[-1] == APP and "--system" in useradd
    assert useradd[useradd.index("--shell") + 1] == "/usr/sbin/nologin"
    assert cmds[find(cmds, "usermod")] == ["usermod", "--append", "--groups", "video,gpio", APP]
    venv = str(root / "opt/emotion-edge/venv")
    assert cmds[find(cmds, "/usr/bin/python3", "-m", "venv")] == [
        "/usr/bin/python3", "-m", "venv", "--clear", "--system-site-packages", venv]
    assert cmds[find(cmds, f"{venv}/bin/python", "-m", "pip")] == [
        f"{venv}/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "--constraint",
        str(src / "systemd/pi-constraints.txt"), str(src)]
    assert cmds[find(cmds, f"{venv}/bin/python", "-m", "edge.detectors.fetch_models")][-2:] == [
        "--dest", str(root / "opt/emotion-edge/models")]
    assert ["chown", f"root:{APP}", str(root / "etc/emotion-edge/config.toml")] in cmds
    # Unit before reload before enable; the check runs before the start (it needs the
    # camera and pins that a running service would hold), as the service user.
    reload, enable = find(cmds, "systemctl", "daemon-reload"), find(cmds, "systemctl", "enable")
    check, start = find(cmds, "runuser", "-u", APP), find(cmds, "systemctl", "start", APP)
    assert reload < enable < check < start
    assert cmds[check][-3:] == ["check", "--config", "/etc/emotion-edge/config.toml"]
    assert "EMOTION_EDGE_MODELS=/opt/emotion-edge/models" in cmds[check]
    assert "would run:" in out and "running:" not in out  # --root never runs anything


def test_second_run_changes_nothing(src, root):
    from edge.detectors.registry import model_files
    for name in model_files():  # every file a detector kind needs (registry.py)
        (src / "models" / name).write_bytes(b"face model")
    install(src, "--root", str(root))
    before = snapshot(root)
    out = install(src, "--root", str(root)).stdout
    assert snapshot(root) == before
    assert "==> models: nothing to do" in out
    assert "==> service unit: nothing to do" in out
    assert "==> config: kept your" in out
    assert "wrote " not in out
    assert ["systemctl", "daemon-reload"] not in would_run(out)
    # Nothing is fetched again, but LiteRT must prove it runs each model on every install.
    fetches = [c for c in would_run(out) if "edge.detectors.fetch_models" in c]
    assert [c[-1] for c in fetches] == ["--verify"], fetches


def test_existing_user_and_groups_are_left_alone(src, root):
    (root / "etc").mkdir()
    (root / "etc/group").write_text("video:x:44:\ngpio:x:997:pi,emotion-edge\nemotion-edge:x:990:\n")
    (root / "etc/passwd").write_text("emotion-edge:x:990:990::/var/lib/emotion-edge:/usr/sbin/nologin\n")
    cmds = would_run(install(src, "--root", str(root)).stdout)
    assert not [c for c in cmds if c[0] in ("groupadd", "useradd")]
    assert cmds[find(cmds, "usermod")] == ["usermod", "--append", "--groups", "video", APP]
    (root / "etc/group").write_text("video:x:44:emotion-edge\ngpio:x:997:emotion-edge,pi\n")
    out = install(src, "--root", str(root)).stdout
    assert "==> user emotion-edge: nothing to do" in out
    assert not [c for c in would_run(out) if c[0] in ("groupadd", "useradd", "usermod")]


def test_edited_config_survives_an_upgrade(src, root):
    install(src, "--root", str(root))
    cfg = root / "etc/emotion-edge/config.toml"
    edited = cfg.read_text().replace('# uri = "auto"', 'uri = "rtsp://10.0.0.9/stream"')
    assert edited != cfg.read_text()
    cfg.write_text(edited)
    # Upgrade: new defaults and a changed unit arrive with a git pull.
    with (src / "edge/default.toml").open("a") as f:
        f.write("\n# a new comment from upstream\n")
    with (src / "systemd/emotion-edge.service").open("a") as f:
        f.write("\n# changed upstream\n")
    out = install(src, "--root", str(root)).stdout
    assert cfg.read_text() == edited
    assert "# a new comment from upstream" in (root / "etc/emotion-edge/config.toml.default").read_text()
    assert "changed upstream" in (root / "etc/systemd/system/emotion-edge.service").read_text()
    assert ["systemctl", "daemon-reload"] in would_run(out)
    assert ["chown", f"root:{APP}", str(cfg)] not in would_run(out)


def test_uninstall_keeps_logs_and_config_purge_removes_them(src, root):
    install(src, "--root", str(root))
    log = root / "var/log/emotion-edge/events.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"event": "x"}\n')
    out = install(src, "--root", str(root), "--uninstall").stdout
    cmds = would_run(out)
    assert ["systemctl", "disable", "--now", APP] in cmds
    assert ["systemctl", "daemon-reload"] in cmds
    assert not (root / "etc/systemd/system/emotion-edge.service").exists()
    assert not (root / "opt/emotion-edge").exists()
    assert not (root / "usr/local/bin/emotion-edge").is_symlink()
    assert (root / "etc/emotion-edge/config.toml").exists() and log.exists()
    assert not [c for c in cmds if c[0] == "userdel"]
    assert "--purge" in out  # tells how to remove the rest

    (root / "etc/passwd").write_text("emotion-edge:x:990:990::/var/lib/emotion-edge:/usr/sbin/nologin\n")
    out = install(src, "--root", str(root), "--uninstall", "--purge").stdout
    assert not (root / "etc/emotion-edge").exists() and not log.parent.exists()
    assert ["userdel", APP] in would_run(out)
    out = install(src, "--root", str(root), "--uninstall").stdout
    assert "==> service: nothing to do" in out


def test_missing_model_is_a_friendly_error(src, root):
    (src / "models/emotion_int8.tflite").unlink()
    proc = install(src, "--root", str(root), expect=1)
    assert proc.stderr.strip().splitlines() == [
        f"install.sh: models/emotion_int8.tflite is missing from {src}: clone the repository again"]


def test_help_and_bad_options(src):
    out = install(src, "--help").stdout
    for word in ["--local", "--dev", "--root", "--uninstall", "--purge", "--no-start"]:
        assert word in out
    for args, msg in [(["--bogus"], "unknown option '--bogus'"),
                      (["--dev"], "--dev goes with --local"),
                      (["--purge"], "--purge goes with --uninstall"),
                      (["--root", "/nonexistent-dir"], "no such folder"),
                      (["--local", "--root", "/tmp"], "--root is for the system install")]:
        proc = install(src, *args, expect=1)
        assert msg in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="no runuser")
def test_system_install_without_root_says_sudo(src):
    if os.geteuid() != 0:
        proc = install(src, expect=1)
    else:  # run it as nobody from a folder nobody can read
        d = Path(tempfile.mkdtemp())
        try:
            d.chmod(0o755)
            shutil.copy2(src / "install.sh", d / "install.sh")
            proc = subprocess.run(["runuser", "-u", "nobody", "--", "bash", str(d / "install.sh")],
                                  capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(d)
        assert proc.returncode == 1
    assert "sudo ./install.sh" in proc.stderr and "--local" in proc.stderr


def test_the_owner_who_ran_sudo_joins_the_service_group(src, root):
    """The log folder is 0750 emotion-edge:emotion-edge: the README's `tail` works for the
    Pi's owner because install.sh adds the user who ran sudo to that group, once."""
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("pi:x:1000:1000::/home/pi:/bin/bash\n")
    (root / "etc/group").write_text("pi:x:1000:\n")
    out = install(src, "--root", str(root), env={"SUDO_USER": "pi"}).stdout
    assert ["usermod", "--append", "--groups", APP, "pi"] in would_run(out)
    assert "==> user pi: added to group emotion-edge" in out
    (root / "etc/group").write_text(f"pi:x:1000:\n{APP}:x:990:pi\n")
    out = install(src, "--root", str(root), env={"SUDO_USER": "pi"}).stdout
    assert "==> user pi: nothing to do" in out and ["usermod", "--append", "--groups", APP, "pi"] \
        not in would_run(out)
    out = install(src, "--root", str(root), env={"SUDO_USER": ""}).stdout   # plain root
    assert "==> user pi" not in out


# --- --local with a stand-in python ------------------------------------------------------

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Stands in for python3: logs what install.sh asks of it, fakes venv/pip/fetch_models.
echo "$*" >> "$FAKE_LOG"
if [[ $1 == -c ]]; then
    [[ -n ${FAKE_OLD:-} ]] && exit 1
    exec "$REAL_PYTHON" "$@"
fi
if [[ $1 == -m && $2 == venv ]]; then
    dir=${@: -1}
    mkdir -p "$dir/bin" && cp "$0" "$dir/bin/python" && exit 0
fi
if [[ $1 == -m && $2 == pip ]]; then exit 0; fi
if [[ $1 == -m && $2 == edge.detectors.fetch_models ]]; then
    touch "$4/face_detection_short_range.tflite" "$4/face_detection_full_range_sparse.tflite"
    exit 0
fi
exit 3
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> tuple[Path, Path]:
    py = tmp_path / "python3"
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    return py, tmp_path / "calls.log"


def local(src: Path, fake, *args: str, expect: int = 0, **env: str):
    py, log = fake
    log.write_text("")
    proc = install(src, "--local", *args, expect=expect,
                   env={"PYTHON": str(py), "FAKE_LOG": str(log), "REAL_PYTHON": sys.executable, **env})
    calls = [c for c in log.read_text().splitlines() if not c.startswith("-c")]
    # Every install proves LiteRT runs the models (install.sh verify_models); the rest:
    assert calls.count(f"-m edge.detectors.fetch_models --dest {src}/models --verify") == (
        proc.returncode == 0 and "--uninstall" not in args)
    calls = [c for c in calls if not c.endswith("--verify")]
    return proc.stdout + proc.stderr, calls


def test_local_install_then_nothing_to_do(src, fake_python):
    out, calls = local(src, fake_python)
    assert calls == [f"-m venv --clear {src}/.venv", "-m pip install --disable-pip-version-check -e .",
                     f"-m edge.detectors.fetch_models --dest {src}/models"]
    assert (src / ".venv/.emotion-edge-stamp").read_text().startswith("sha=")
    out, calls = local(src, fake_python)
    assert calls == []
    assert out.count("nothing to do") == 3, out


def test_local_dev_extras_are_kept_and_pyproject_change_reinstalls(src, fake_python):
    local(src, fake_python)
    out, calls = local(src, fake_python, "--dev")
    assert calls == ["-m pip install --disable-pip-version-check -e .[host,test]"]
    out, calls = local(src, fake_python)  # a --dev venv already has everything --local needs
    assert calls == []
    with (src / "pyproject.toml").open("a") as f:
        f.write("\n# new dependency\n")
    out, calls = local(src, fake_python)
    assert calls == ["-m pip install --disable-pip-version-check -e .[host,test]"]


def test_local_needs_python_311(src, fake_python):
    out, calls = local(src, fake_python, expect=1, FAKE_OLD="1")
    assert "Python 3.11 or newer is needed" in out
    assert not (src / ".venv").exists()


def test_local_uninstall_removes_venv(src, fake_python):
    local(src, fake_python)
    out, _ = local(src, fake_python, "--uninstall")
    assert not (src / ".venv").exists() and "removed" in out


def test_stamp_helpers_when_sourced(src):
    script = f"""
    source {shlex.quote(str(src / 'install.sh'))}
    merge_extras "test" "host,test"; merge_extras "" ""
    line=$(local_stamp_wanted host,test)
    stamp_covers "$line" "" && echo covers-none
    stamp_covers "$line" "test" && echo covers-test
    stamp_covers "$line" "docs" || echo not-docs
    stamp_covers "sha=0 extras=host,test" "" || echo stale
    """
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert out.stdout.split("\n") == ["host,test", "", "covers-none", "covers-test", "not-docs",
                                      "stale", ""], out.stderr


# --- the unit, shellcheck, CI ------------------------------------------------------------

@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_hardening_exposure_at_most_2():
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                           str(ROOT / "systemd/emotion-edge.service")],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for emotion-edge\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 2.0, proc.stdout


def test_unit_has_the_runtime_contract():
    text = (ROOT / "systemd/emotion-edge.service").read_text()
    keys = dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["Type"] == "notify" and keys["NotifyAccess"] == "main"
    assert keys["WatchdogSec"] == "30" and keys["Restart"] == "on-failure"
    assert keys["ExecStart"] == ("/opt/emotion-edge/venv/bin/emotion-edge run "
                                 "--config /etc/emotion-edge/config.toml")
    assert keys["User"] == APP and set(keys["SupplementaryGroups"].split()) == {"video", "gpio"}
    assert keys["LogsDirectory"] == keys["StateDirectory"] == keys["ConfigurationDirectory"] == APP
    assert keys["WorkingDirectory"] == "/var/lib/emotion-edge"  # lgpio's FIFOs go there


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean():
    proc = subprocess.run(["shellcheck", "install.sh", ".ci/run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = next(x for x in readme.splitlines() if x.startswith("./install.sh --local --dev &&"))
    assert "-m pytest -n auto" in command               # the suite on every core
    assert command in (ROOT / ".ci/run").read_text().splitlines()
    assert ".venv/bin/python tests/pi_pins.py" in (ROOT / ".ci/run").read_text()
