#!/usr/bin/env python3
"""Print the systemd drop-in that opens exactly the network the configured outputs need.

    python3 systemd/network_dropin.py /etc/emotion-edge/config.toml

The unit itself has PrivateNetwork=yes (no network at all). With ``[web] enabled`` the
page must be reachable: from this device only (a loopback bind: ``localhost``), or from
the local network (any other bind: the private address ranges a school or shop LAN uses).
With ``[mqtt] enabled`` the broker must be: its address, or for a host name what it
resolves to now and the DNS servers in /etc/resolv.conf (run install.sh again when the
broker's address changes).
Prints nothing when the config needs no network. Standard library only: install.sh runs
it with the system's python3, before (or without) the venv.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
import tomllib

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


def web_allow(web: dict) -> list[str]:
    if not web.get("enabled", False):
        return []
    bind = str(web.get("bind", "127.0.0.1"))
    try:
        loopback = bind == "localhost" or ipaddress.ip_address(bind).is_loopback
    except ValueError:
        loopback = False
    return ["localhost"] if loopback else ["localhost", LAN]


def mqtt_allow(mqtt: dict, resolv: str = "/etc/resolv.conf") -> list[str]:
    host = str(mqtt.get("host", "")).strip()
    if not mqtt.get("enabled", False) or not host:
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


def dropin(config: dict, path: str) -> str:
    allow = web_allow(config.get("web", {})) + mqtt_allow(config.get("mqtt", {}))
    if not allow:
        return ""
    lines = [f"IPAddressAllow={a}" for a in dict.fromkeys(allow)]
    return HEADER.format(config=path) + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        config = {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"network_dropin.py: {argv[1]}: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dropin(config, argv[1]))
    except ValueError as exc:
        print(f"network_dropin.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
