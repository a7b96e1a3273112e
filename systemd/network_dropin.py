#!/usr/bin/env python3
"""Print the systemd drop-in that opens exactly the network the configured outputs need.

    python3 systemd/network_dropin.py /etc/emotion-edge/config.toml

The unit itself has PrivateNetwork=yes (no network at all). With ``[web] enabled`` the
page must be reachable: from this device only (a loopback bind: ``localhost``), or from
the local network (any other bind: the private address ranges a school or shop LAN uses).
With ``[mqtt] enabled`` the broker must be: its address, or for a host name what it
resolves to now and the DNS servers in /etc/resolv.conf (run install.sh again when the
broker's address changes).
Prints nothing when the config needs no network. It reads the config as the program does
(``edge.config.load``: the same defaults and checks, the same loopback test as the page), so
install.sh runs it with the venv's python, with the source on PYTHONPATH.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from edge.config import ConfigError, load
from edge.web.config import is_loopback

HEADER = """\
# Written by install.sh from {config} (network_dropin.py): the network the configured
# outputs need, and nothing more. Regenerated on every install; to change it, edit the
# config and run sudo ./install.sh again.
[Service]
PrivateNetwork=no
RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6
IPAddressDeny=any
"""
LAN = "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 fc00::/7 fe80::/10"


def web_allow(web) -> list[str]:
    if not web.enabled:
        return []
    return ["localhost"] if is_loopback(web.bind) else ["localhost", LAN]


def mqtt_allow(mqtt, resolv: str = "/etc/resolv.conf") -> list[str]:
    host = mqtt.host.strip()
    if not mqtt.enabled or not host:
        return []
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except OSError:
        raise ValueError(f"[mqtt] host {host}: cannot resolve it here; use the broker's IP "
                         "address or fix DNS, then run install.sh again") from None
    try:
        with open(resolv) as f:
            dns = [w[1] for w in (line.split() for line in f) if len(w) > 1 and w[0] == "nameserver"]
    except OSError:
        dns = []
    return found + dns


def dropin(config, path: str) -> str:
    allow = web_allow(config.web) + mqtt_allow(config.mqtt)
    if not allow:
        return ""
    lines = [f"IPAddressAllow={a}" for a in dict.fromkeys(allow)]
    return HEADER.format(config=path) + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        config = load(argv[1] if Path(argv[1]).exists() else None)
    except ConfigError as exc:
        print(f"network_dropin.py: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dropin(config, argv[1]))
    except ValueError as exc:
        print(f"network_dropin.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
