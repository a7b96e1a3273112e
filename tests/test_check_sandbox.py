"""`check` sees sources as the service does: a clip in /home or /tmp opens for you, but the
unit's ProtectHome=yes / PrivateTmp=yes hide it from the service (which then crash-looped)."""
from __future__ import annotations

import shutil

from edge import config
from edge.check import run_checks


def camera_line(tmp_path, clip, monkeypatch, service: bool) -> str:
    if service:   # systemd sets it, and so does install.sh's check
        monkeypatch.setenv("CONFIGURATION_DIRECTORY", "/etc/emotion-edge")
    else:
        monkeypatch.delenv("CONFIGURATION_DIRECTORY", raising=False)
    cfg = config.from_dict({"source": {"uri": str(clip)}, "log": {"dir": str(tmp_path / "logs")}})
    lines: list[str] = []
    run_checks(cfg, out=lines.append)
    return next(x for x in lines if "camera" in x)


def test_a_clip_the_sandbox_hides_fails_the_check_for_the_service(tmp_path, videos, monkeypatch):
    clip = tmp_path / "clip.mp4"          # tmp_path is under /tmp: PrivateTmp=yes hides it
    shutil.copy(videos / "pyfeat_single_face.mp4", clip)
    assert camera_line(tmp_path, clip, monkeypatch, service=False).startswith("ok")
    line = camera_line(tmp_path, clip, monkeypatch, service=True)
    assert line.startswith("FAIL") and "PrivateTmp=yes hides /tmp" in line and "/srv/emotion-edge/" in line


def test_a_clip_the_service_can_read_passes(tmp_path, videos, monkeypatch):
    line = camera_line(tmp_path, videos / "pyfeat_single_face.mp4", monkeypatch, service=True)
    assert line.startswith("ok"), line
