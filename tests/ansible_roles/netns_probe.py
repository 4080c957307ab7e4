"""Run inside ``unshare --net`` by test_nova_firewall.py: bring loopback up, load the rules,
listen, and try each connection from its source address. Prints {"SOURCE->ADDRESS:PORT": bool}."""

from __future__ import annotations

import json
import socket
import subprocess
import sys


def split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def main() -> None:
    rules, listen, tries = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["nft", "-f", rules], check=True)
    servers = []
    for address in listen:
        server = socket.create_server(split(address))
        servers.append(server)
    reached = {}
    for source, address in tries:
        with socket.socket() as sock:
            sock.settimeout(0.5)  # a dropped SYN is never answered
            sock.bind((source, 0))
            try:
                sock.connect(split(address))
                reached[f"{source}->{address}"] = True
            except OSError:
                reached[f"{source}->{address}"] = False
    print(json.dumps(reached))


if __name__ == "__main__":
    main()
