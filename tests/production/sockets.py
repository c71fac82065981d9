"""The sockets a set of processes listens on, as the kernel lists them (psutil reads /proc)."""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple


class Listening(NamedTuple):
    pid: int
    command: str
    address: str
    port: int

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command}): {self.address}:{self.port}"


def listening(pids: set[int]) -> list[Listening]:
    """Every TCP socket these processes listen on and every UDP socket they have bound
    without a peer (both receive from anyone who can reach the address)."""
    import psutil

    found = []
    for pid in sorted(pids):
        try:
            proc = psutil.Process(pid)
            command = " ".join(proc.cmdline()[:4])
            sockets = proc.net_connections(kind="inet")
        except psutil.Error:
            continue  # ended meanwhile (a task's process)
        for sock in sockets:
            listens = sock.status == psutil.CONN_LISTEN
            bound_udp = sock.type == socket.SOCK_DGRAM and not sock.raddr
            if listens or bound_udp:
                found.append(Listening(pid, command, sock.laddr.ip, sock.laddr.port))
    return found


def beyond_loopback(sockets: list[Listening]) -> list[Listening]:
    """The sockets any other host could reach: 0.0.0.0, ::, or an address of an interface."""
    return [s for s in sockets if not ipaddress.ip_address(s.address.split("%")[0]).is_loopback]
