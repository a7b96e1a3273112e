"""install.sh and [mqtt]: the network drop-in (systemd/network_dropin.py) opens the broker's
address when MQTT is turned on, and nothing when it is off; the hardening stays <= 2.0."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from test_install import install, root, src, would_run  # noqa: F401  (fixtures)

APP = "emotion-edge"
DROPIN = f"etc/systemd/system/{APP}.service.d/50-network.conf"


def set_mqtt(root, text: str) -> None:
    cfg = root / "etc/emotion-edge/config.toml"
    body = cfg.read_text()
    start = body.index("[mqtt]\n") + len("[mqtt]\n")
    cfg.write_text(body[:start] + text + body[start:])


def allowed(root) -> list[str]:
    return re.findall(r"^IPAddressAllow=(.*)$", (root / DROPIN).read_text(), re.M)


def exposure(root) -> float:
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                           f"--root={root}", f"{APP}.service"],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for emotion-edge\.service: (\d+\.\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    return float(m.group(1))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_mqtt_on_opens_only_the_broker_and_off_closes_it(src, root):
    out = install(src, "--root", str(root)).stdout
    assert not (root / DROPIN).exists() and "no output needs the network" in out
    assert exposure(root) <= 1.0
    set_mqtt(root, 'enabled = true\nhost = "192.168.1.20"\nroom = "Room 12"\n')
    out = install(src, "--root", str(root)).stdout
    text = (root / DROPIN).read_text()
    assert "PrivateNetwork=no" in text and "IPAddressDeny=any" in text
    assert allowed(root) == ["192.168.1.20"]                # the broker, nothing else
    assert ["systemctl", "daemon-reload"] in would_run(out)   # or the restart keeps the old unit
    e = exposure(root)
    assert 1.0 < e <= 2.0, e
    out = install(src, "--root", str(root)).stdout          # again: nothing to do
    assert "nothing to do" in out and ["systemctl", "daemon-reload"] not in would_run(out)
    cfg = root / "etc/emotion-edge/config.toml"
    cfg.write_text(cfg.read_text().replace("enabled = true\nhost", "enabled = false\nhost", 1))
    out = install(src, "--root", str(root)).stdout
    assert not (root / DROPIN).exists() and "removed" in out
    assert ["systemctl", "daemon-reload"] in would_run(out)


def test_mqtt_and_the_web_page_share_one_drop_in(src, root):
    install(src, "--root", str(root))
    cfg = root / "etc/emotion-edge/config.toml"
    cfg.write_text(cfg.read_text().replace("[web]\n", "[web]\nenabled = true\n", 1))
    set_mqtt(root, 'enabled = true\nhost = "10.1.2.3"\n')
    install(src, "--root", str(root))
    assert allowed(root) == ["localhost", "10.1.2.3"]


def test_mqtt_host_name_allows_what_it_resolves_to_and_dns(src, root):
    install(src, "--root", str(root))
    set_mqtt(root, 'enabled = true\nhost = "localhost"\n')
    install(src, "--root", str(root))
    dns = re.findall(r"^nameserver\s+(\S+)", open("/etc/resolv.conf").read(), re.M)
    got = allowed(root)
    assert "127.0.0.1" in got and all(d in got for d in dns)


def test_an_unresolvable_broker_stops_the_install_with_its_reason(src, root):
    install(src, "--root", str(root))
    set_mqtt(root, 'enabled = true\nhost = "no-such-broker.invalid"\n')
    proc = install(src, "--root", str(root), expect=1)
    assert "[mqtt] host no-such-broker.invalid: cannot resolve it here; use the broker's IP " \
           "address or fix DNS" in proc.stderr
    assert not (root / DROPIN).exists()
