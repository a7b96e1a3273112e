"""install.sh and [mqtt]: the network drop-in appears when MQTT is turned on (and only the
broker is reachable), goes away when it is turned off, and the hardening stays <= 2.0."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from test_install import install, root, src, would_run  # noqa: F401  (fixtures)

APP = "emotion-edge"


def turn_on(root, host: str) -> None:
    cfg = root / "etc/emotion-edge/config.toml"
    cfg.write_text(cfg.read_text().replace(
        "[mqtt]\n", f'[mqtt]\nenabled = true\nhost = "{host}"\nroom = "Room 12"\n', 1))


def exposure(root) -> float:
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                           f"--root={root}", f"{APP}.service"],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for emotion-edge\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    return float(m.group(1))


def test_mqtt_off_installs_no_network(src, root):
    out = install(src, "--root", str(root)).stdout
    assert "==> mqtt network: nothing to do ([mqtt] is off: no network)" in out
    assert not (root / f"etc/systemd/system/{APP}.service.d").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_mqtt_on_opens_only_the_broker_and_off_closes_it(src, root):
    install(src, "--root", str(root))
    assert exposure(root) <= 1.0                       # no network at all
    turn_on(root, "192.168.1.20")
    out = install(src, "--root", str(root)).stdout
    dropin = root / f"etc/systemd/system/{APP}.service.d/mqtt.conf"
    text = dropin.read_text()
    assert text.startswith((src / "systemd/mqtt.conf").read_text())
    keys = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert keys[-5:] == ["PrivateNetwork=no", "RestrictAddressFamilies=AF_INET AF_INET6",
                         "IPAddressDeny=", "IPAddressDeny=any", "IPAddressAllow=192.168.1.20"]
    assert ["systemctl", "daemon-reload"] in would_run(out)
    assert "the service may reach 192.168.1.20" in out
    # The drop-in merged into the unit: still at most 2.0.
    e = exposure(root)
    assert 1.0 < e <= 2.0, e
    # Again: nothing to do, no reload.
    out = install(src, "--root", str(root)).stdout
    assert "==> mqtt network: nothing to do (broker 192.168.1.20)" in out
    assert ["systemctl", "daemon-reload"] not in would_run(out)
    # Off again: the network goes away.
    cfg = root / "etc/emotion-edge/config.toml"
    cfg.write_text(cfg.read_text().replace("enabled = true\nhost", "enabled = false\nhost", 1))
    out = install(src, "--root", str(root)).stdout
    assert not dropin.exists() and "removed" in out
    assert ["systemctl", "daemon-reload"] in would_run(out)


def test_mqtt_host_name_allows_its_addresses_and_dns(src, root):
    install(src, "--root", str(root))
    (root / "etc/resolv.conf").write_text("nameserver 192.168.1.1\n")
    turn_on(root, "localhost")
    install(src, "--root", str(root))
    allowed = [line.split("=", 1)[1] for line in
               (root / f"etc/systemd/system/{APP}.service.d/mqtt.conf").read_text().splitlines()
               if line.startswith("IPAddressAllow=")]
    assert "127.0.0.1" in allowed and "192.168.1.1" in allowed


def test_unresolvable_broker_and_broken_config_are_one_line(src, root):
    install(src, "--root", str(root))
    turn_on(root, "no-such-broker.invalid")
    proc = install(src, "--root", str(root), expect=1)
    assert proc.stderr.strip().splitlines() == [
        "install.sh: [mqtt] host no-such-broker.invalid: cannot resolve it here; use the "
        "broker's IP address or fix DNS, then run install.sh again"]
    (root / "etc/emotion-edge/config.toml").write_text("[mqtt\n")
    proc = install(src, "--root", str(root), expect=1)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "cannot read" in proc.stderr and "config.toml" in proc.stderr
