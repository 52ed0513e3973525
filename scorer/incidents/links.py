"""Which correlation entity a finding belongs to, and the host-IP links that decide it.

An EDR or SIEM finding names its host; a netflow finding only addresses. The events link
them: a host's endpoint or SIEM finding may carry the host's own address (Sysmon's local
end of a connection, AIT-ADS' ``ip`` column, a Wazuh agent's IP; see
``entities._own_address`` for which addresses are the other end instead). Those links are
learned as findings pass (:meth:`LinkTable.learn`), and a netflow finding whose source
(else destination) address is a known host's joins that host's episode: netflow, EDR and
SIEM findings about one host become one incident.

Links only ever map an address to a host, one step, never host to host: chains through
shared addresses (a proxy, a NAT gateway) would otherwise merge a whole network into one
incident. A link learned after a flow was keyed does not move that flow (it is already
part of its own incident); the table is bounded (least recently used out first), and the
newest host for an address wins, which follows DHCP reassignments.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict

import msgspec

from .model import Member

HOST = "host:"
IP = "ip:"
USER = "user:"


def _linkable(ip: str) -> bool:
    """Addresses that stand for one host: not loopback, unspecified, multicast or broadcast."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local
                or str(addr) == "255.255.255.255")


class LinkTable:
    """Address -> host, at most ``max_links`` of them."""

    def __init__(self, max_links: int = 100_000) -> None:
        self.max_links = max_links
        self._hosts: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hosts)

    def get(self, ip: str) -> str | None:
        host = self._hosts.get(ip)
        if host is not None:
            self._hosts.move_to_end(ip)
        return host

    def set(self, ip: str, host: str) -> bool:
        """Record ``ip -> host``; True when that is news (to publish for other routers)."""
        if self._hosts.get(ip) == host:
            self._hosts.move_to_end(ip)
            return False
        self._hosts[ip] = host
        self._hosts.move_to_end(ip)
        while len(self._hosts) > self.max_links:
            self._hosts.popitem(last=False)
        return True

    def learn(self, member: Member) -> list[tuple[str, str]]:
        """The new link ``member`` gives: its host's own address (``Member.own_ip``, set only
        where the event says which end is the host's)."""
        if member.kind == "netflow" or not member.hosts or not member.own_ip:
            return []
        ip, host = member.own_ip, member.hosts[0]
        if self._hosts.get(ip) == host:  # known (most findings): no address parsing, which costs more than the rest
            self._hosts.move_to_end(ip)
            return []
        return [(ip, host)] if _linkable(ip) and self.set(ip, host) else []

    def resolve(self, member: Member) -> Member:
        """``member`` with its correlation key set and the hosts its addresses resolve to added.

        The key: its own host; else the host of its source address, then of its destination;
        else its source address; else its first user.
        """
        resolved = [h for h in (self.get(ip) for ip in member.ips) if h is not None]
        hosts = member.hosts + tuple(h for h in dict.fromkeys(resolved) if h not in member.hosts)
        if hosts:
            key = HOST + hosts[0]
        elif member.ips:
            key = IP + member.ips[0]
        else:
            key = USER + member.users[0].lower()
        return msgspec.structs.replace(member, key=key, hosts=hosts)
