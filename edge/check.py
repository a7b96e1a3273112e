"""``emotion-edge check``: try each part of the setup and say plainly what is wrong.

A check that passes means ``run`` gets past it: the models are loaded and run once on a
face-sized input exactly as ``run`` loads them, and the camera check accepts only a real
camera or the source the config names (never the sample clip)."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .config import Config
from .errors import one_line


def _model(cfg: Config) -> str:
    from .classifier import FaceClassifier
    c = FaceClassifier(cfg.classifier)   # validates the sidecar and runs one inference
    return f"{c.model.path} ({len(c.labels)} emotions, input {c.model.input_size})"


def _micro(cfg: Config) -> str:
    from .micro.model import FlowModel
    m = FlowModel(cfg.micro.model_path(), threads=cfg.micro.threads)
    return f"{cfg.micro.model_path()} ({len(m.labels)} classes)"


def _detector(cfg: Config) -> str:
    import numpy as np

    from .detectors import create_detector
    from .detectors.fetch_models import is_valid
    from .detectors.registry import KINDS
    d = create_detector(cfg.detector)
    d.detect(np.zeros((240, 320, 3), np.uint8))
    files = KINDS[cfg.detector.kind].models
    bad = [m.name for m in files if not is_valid(cfg.detector.model_dir() / m.name)]
    if bad:  # it loads, but is not the file the registry recorded
        raise ValueError(f"{', '.join(bad)}: sha256 differs from the recorded one; run "
                         "`python -m edge.detectors.fetch_models` again")
    licences = sorted({m.licence for m in files})
    return d.name + (f" ({len(files)} model file(s), sha256 ok, {', '.join(licences)})"
                     if files else "")


def _log_dir(cfg: Config) -> str:
    d = Path(cfg.log.dir)
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=d, prefix=".check-"):
        pass
    free = os.statvfs(d)
    mb = free.f_bavail * free.f_frsize / 1e6
    if mb < 50:
        raise RuntimeError(f"{d}: only {mb:.0f} MB free")
    return f"{d} is writable, {mb:.0f} MB free"


def check_sign_in(cfg: Config) -> str:
    """Every password file (and the page's TLS pair) read as ``run`` reads them: a file
    that yields no usable password fails here, not as an open page."""
    from .sinks.mqtt import read_password

    said = []
    if cfg.web.password_file or (cfg.web.enabled and cfg.web.password):
        cfg.web.read_password()
        said.append("[web] password " + (f"from {cfg.web.password_file}" if cfg.web.password_file
                                         else "in the config"))
    if cfg.web.tls:
        cfg.web.ssl_context()
        said.append(f"[web] HTTPS with {cfg.web.tls_cert}")
    if cfg.mqtt.password_file:
        read_password(cfg.mqtt.password_file)
        said.append(f"[mqtt] password from {cfg.mqtt.password_file}")
    return ", ".join(said) or "no password or key files in the config"


def _gpio(cfg: Config) -> str:
    if not cfg.gpio.enabled:
        return "disabled in the config"
    from .sinks.gpio import GpioSink
    sink = GpioSink(cfg.gpio)
    sink.close()
    return f"pins claimed and released ({cfg.gpio.mode} mode)"


# What the service's sandbox (systemd/emotion-edge.service) hides from it: a clip there
# opens for you, but the service gets PermissionError or an empty folder.
SANDBOX_HIDES = {"/home": "ProtectHome=yes", "/root": "ProtectHome=yes",
                 "/run/user": "ProtectHome=yes", "/tmp": "PrivateTmp=yes",
                 "/var/tmp": "PrivateTmp=yes"}


def hidden_from_service(uri: str) -> str | None:
    """Why the service could not read the file source ``uri``, when checking for the
    service (systemd, or install.sh's check, set $CONFIGURATION_DIRECTORY); else None."""
    if not os.environ.get("CONFIGURATION_DIRECTORY") or "://" in uri or not uri.startswith(("/", ".", "~")):
        return None
    path = os.path.realpath(os.path.expanduser(uri))
    for top, setting in SANDBOX_HIDES.items():
        if path == top or path.startswith(top + "/"):
            return (f"{uri}: the service cannot read it ({setting} hides {top}); put clips in "
                    f"/srv/emotion-edge/ (docs/raspberry-pi.md, Video files)")
    return None


def _camera(cfg: Config) -> str:
    from .sources import create_source
    from .errors import display
    from .sources.base import frame_problem
    hidden = hidden_from_service(str(cfg.source.uri))
    if hidden:
        raise RuntimeError(hidden)
    src = create_source(cfg.source, demo=False)
    src.open()
    try:
        frame = src.read()
    finally:
        src.close()
    problem = frame_problem(frame)
    if problem is not None:
        raise RuntimeError(f"{display(src.name)}: {problem}")
    kind = "" if src.live else " (a file, not a camera)"
    return f"{display(src.name)}{kind}: {frame.shape[1]}x{frame.shape[0]} frames"


def run_checks(cfg: Config, camera: bool = True, out=print) -> int:
    checks: list[tuple[str, Callable[[Config], str]]] = [
        ("model", _model), ("detector", _detector), ("log", _log_dir), ("gpio", _gpio),
        ("sign-in", check_sign_in)]
    if cfg.micro.enabled:
        checks.insert(1, ("micro", _micro))
    if camera:
        checks.append(("camera", _camera))
    failed = 0
    for name, check in checks:
        try:
            out(f"ok    {name:9s} {check(cfg)}")
        except Exception as exc:  # every failure becomes one readable line
            failed += 1
            out(f"FAIL  {name:9s} {one_line(exc)}")
    out("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0
