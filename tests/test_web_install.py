"""The web page on a Pi: the network drop-in that opens just what [web] needs (and the
unit's systemd-analyze exposure with it), and install.sh --kiosk / --uninstall, run into
a --root folder (every system-changing command is printed, not run)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from test_install import install, root, src, would_run  # noqa: F401 (fixtures)

DROPIN = "etc/systemd/system/emotion-edge.service.d/50-network.conf"


def dropin_for(tmp_path, toml: str) -> str:
    conf = tmp_path / "config.toml"
    conf.write_text(toml)
    return subprocess.run([sys.executable, str(ROOT / "systemd/network_dropin.py"), str(conf)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout


def test_no_output_needs_no_network(tmp_path):
    assert dropin_for(tmp_path, "") == ""
    assert dropin_for(tmp_path, "[web]\nenabled = false\nbind = '0.0.0.0'\n") == ""


def test_the_page_on_loopback_opens_localhost_only(tmp_path):
    text = dropin_for(tmp_path, "[web]\nenabled = true\n")
    assert "PrivateNetwork=no" in text and "IPAddressDeny=any" in text
    assert re.findall(r"^IPAddressAllow=(.*)$", text, re.M) == ["localhost"]
    lan = dropin_for(tmp_path, "[web]\nenabled = true\nbind = '0.0.0.0'\npassword_file = '/x'\n")
    allow = re.findall(r"^IPAddressAllow=(.*)$", lan, re.M)
    assert allow[0] == "localhost" and "192.168.0.0/16" in allow[1] and "0.0.0.0/0" not in lan


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("web", ["enabled = true", "enabled = true\nbind = '0.0.0.0'\npassword = 'x'"])
def test_exposure_with_the_page_on_stays_at_most_2(tmp_path, web):
    top = tmp_path / "sysroot"
    unit_dir = top / "etc/systemd/system"
    (unit_dir / "emotion-edge.service.d").mkdir(parents=True)
    shutil.copy(ROOT / "systemd/emotion-edge.service", unit_dir)
    (top / DROPIN).write_text(dropin_for(tmp_path, f"[web]\n{web}\n"))
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={top}",
                           "--no-pager", "emotion-edge.service"], capture_output=True, text=True,
                          timeout=60)
    m = re.search(r"Overall exposure level for emotion-edge\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert "PrivateNetwork=" in proc.stdout      # the drop-in was read: the network is open
    assert float(m.group(1)) <= 2.0, proc.stdout


def test_kiosk_install_and_uninstall(src, root):
    env = {"SUDO_USER": "kioskuser", "LANG": "C.UTF-8"}
    out = install(src, "--root", str(root), "--kiosk", env=env).stdout
    config = (root / "etc/emotion-edge/config.toml").read_text()
    assert re.search(r"^\[web\]\n(?:#.*\n)*enabled = true$", config, re.M), config
    assert "IPAddressAllow=localhost" in (root / DROPIN).read_text()
    entry = root / "home/kioskuser/.config/autostart/emotion-edge-kiosk.desktop"
    text = entry.read_text()
    assert "Exec=/opt/emotion-edge/kiosk.sh http://127.0.0.1:8080/kiosk\n" in text
    assert (root / "opt/emotion-edge/kiosk.sh").read_bytes() == (src / "systemd/kiosk.sh").read_bytes()
    cmds = would_run(out)
    assert ["raspi-config", "nonint", "do_boot_behaviour", "B4"] in cmds
    assert not any("fonts-noto-cjk" in c for c in cmds)             # English: no CJK font
    assert "Web page:              http://127.0.0.1:8080/" in out
    # Again: nothing new to do, and the config keeps one enabled line.
    again = install(src, "--root", str(root), "--kiosk", env=env).stdout
    assert "kiosk: nothing to do" in again
    assert (root / "etc/emotion-edge/config.toml").read_text().count("\nenabled = true") == 1
    install(src, "--root", str(root), "--uninstall")
    assert not entry.exists() and not (root / DROPIN).exists()
    assert (root / "etc/emotion-edge/config.toml").exists()          # the config is kept


def test_a_chinese_kiosk_gets_a_cjk_font(src, root):
    conf = root / "etc/emotion-edge/config.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text('[web]\nenabled = true\nlanguage = "zh-CN"\n')
    out = install(src, "--root", str(root), "--kiosk", env={"SUDO_USER": "kioskuser", "LANG": "C.UTF-8"}).stdout
    assert [c for c in would_run(out) if "fonts-noto-cjk" in c][0][-4:] == ["install", "-y", "-q", "fonts-noto-cjk"]


def test_kiosk_needs_the_desktop_user(src, root):
    proc = install(src, "--root", str(root), "--kiosk", env={"SUDO_USER": ""}, expect=1)
    assert "from the account that logs in to the Pi's desktop" in proc.stderr


def test_turning_the_page_off_removes_the_network_again(src, root):
    install(src, "--root", str(root), "--kiosk", env={"SUDO_USER": "kioskuser"})
    conf = root / "etc/emotion-edge/config.toml"
    conf.write_text(conf.read_text().replace("enabled = true", "enabled = false"))
    out = install(src, "--root", str(root)).stdout
    assert "no output needs the network: removed" in out and not (root / DROPIN).exists()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_web_tls_makes_a_self_signed_pair_and_sets_it(src, root):
    from edge.web.config import WebConfig
    out = install(src, "--root", str(root), "--web-tls").stdout
    etc = root / "etc/emotion-edge"
    cert, key = etc / "web.crt", etc / "web.key"
    assert "web tls: made a self-signed certificate" in out
    assert (key.stat().st_mode & 0o777) == 0o640 and (cert.stat().st_mode & 0o777) == 0o644
    assert ["chown", "root:emotion-edge", str(key)] in would_run(out)
    config = (etc / "config.toml").read_text()
    assert re.search(r'^tls_cert = "/etc/emotion-edge/web.crt"$', config, re.M), config
    assert re.search(r'^tls_key = "/etc/emotion-edge/web.key"$', config, re.M), config
    assert WebConfig(tls_cert=str(cert), tls_key=str(key)).ssl_context() is not None
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    before = cert.read_bytes()
    again = install(src, "--root", str(root), "--web-tls").stdout
    assert "web tls: kept your" in again and cert.read_bytes() == before
    assert (etc / "config.toml").read_text().count("\ntls_cert = ") == 1
