"""``-discover=<cluster>``: mDNS discovery, as Go's agent (reference section 4.4).

How this works: with the optional ``zeroconf`` package, :class:`Discovery` announces this node
as the service ``_serf_<cluster>._tcp.local.`` (instance name = node name, the advertised
gossip IP and port, TXT ``Serf '<cluster>' cluster``, as hashicorp/mdns does) and browses the
same service type. Every instance it finds (other than itself) is resolved to ``ip:port``;
new addresses are batched behind a 100 ms quiet period and then joined with the agent's
replay setting, each address tried once (Go's behaviour). The zeroconf browser re-queries on
its own schedule (Go polls every 60 s). ``mdns.interface`` (or ``interface``) limits the
interfaces by name; ``disable_ipv4``/``disable_ipv6`` pick the IP version.

Without ``zeroconf``, :func:`check_available` raises :class:`MDNSUnavailable` with
"mDNS discovery needs the zeroconf package: pip install 'pyserf[mdns]'" and the agent
refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import socket
from typing import TYPE_CHECKING, Any

from serf.address import bytes_to_ip

if TYPE_CHECKING:
    from serf.agent.agent import Agent
    from serf.agent.config import AgentConfig

__all__ = ["Discovery", "MDNSUnavailable", "check_available", "service_type"]

log = logging.getLogger("serf.agent.mdns")

#: quiet period before a batch of discovered addresses is joined
BATCH_QUIET = 0.1


class MDNSUnavailable(RuntimeError):
    """``-discover`` cannot work in this installation."""


def check_available() -> None:
    """Raise :class:`MDNSUnavailable` when the ``zeroconf`` package is missing."""
    if importlib.util.find_spec("zeroconf") is None:
        raise MDNSUnavailable(
            "mDNS discovery needs the zeroconf package: pip install 'pyserf[mdns]'"
        )


def service_type(cluster: str) -> str:
    """The mDNS service type of a cluster: ``_serf_<cluster>._tcp.local.``."""
    return f"_serf_{cluster}._tcp.local."


def _interface_ips(name: str) -> list[str]:
    import ifaddr

    for adapter in ifaddr.get_adapters():
        if adapter.nice_name == name or adapter.name == name:
            return [ip.ip if isinstance(ip.ip, str) else ip.ip[0] for ip in adapter.ips]
    raise MDNSUnavailable(f"mDNS interface {name!r} not found")


class Discovery:
    """Announce this node over mDNS and join the peers found."""

    def __init__(self, agent: Agent, config: AgentConfig) -> None:
        self.agent = agent
        self.config = config
        self.cluster = config.discover
        self.stype = service_type(self.cluster)
        self._zc: Any = None
        self._browser: Any = None
        self._info: Any = None
        self._tried: set[str] = set()
        self._pending: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Register the service and start browsing."""
        check_available()
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

        mdns_cfg = self.config.mdns
        iface = mdns_cfg.interface or self.config.interface
        interfaces: Any = _interface_ips(iface) if iface else InterfaceChoice.All
        version = IPVersion.All
        if mdns_cfg.disable_ipv6:
            version = IPVersion.V4Only
        elif mdns_cfg.disable_ipv4:
            version = IPVersion.V6Only
        member = self.agent.serf.local_member
        ip = bytes_to_ip(member.addr)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        txt = f"Serf '{self.cluster}' cluster".encode()
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=version)
        self._info = AsyncServiceInfo(
            self.stype,
            f"{self.agent.node_name}.{self.stype}",
            addresses=[socket.inet_pton(family, ip)],
            port=member.port,
            properties=bytes([len(txt)]) + txt,
        )
        # Go's service names contain "_" (``_serf_<cluster>``): not strict RFC 6763
        await self._zc.async_register_service(self._info, allow_name_change=False, strict=False)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, self.stype, handlers=[self._on_change]
        )
        log.info("agent.mdns: discovery for cluster %r started", self.cluster)

    def _on_change(self, **kwargs: Any) -> None:
        from zeroconf import ServiceStateChange

        if kwargs.get("state_change") not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        name = str(kwargs.get("name", ""))
        if name == f"{self.agent.node_name}.{self.stype}":
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(self.stype, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            log.debug("agent.mdns: could not resolve %s", name)
            return
        for ip in info.parsed_addresses():
            addr = f"[{ip}]:{info.port}" if ":" in ip else f"{ip}:{info.port}"
            if addr not in self._tried:
                self._tried.add(addr)
                self._pending.add(addr)
        if self._pending:
            if self._flush is not None:
                self._flush.cancel()
            self._flush = asyncio.get_running_loop().call_later(BATCH_QUIET, self._join_batch)

    def _join_batch(self) -> None:
        addrs, self._pending = sorted(self._pending), set()
        task = asyncio.get_running_loop().create_task(self._join(addrs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _join(self, addrs: list[str]) -> None:
        try:
            n = await self.agent.join(addrs, self.config.replay_on_join)
            log.info("agent.mdns: Joined %d hosts", n)
        except Exception as exc:  # a failed discovery join is only logged (as Go)
            log.warning("agent.mdns: Failed to join: %s", exc)

    async def stop(self) -> None:
        """Unregister and stop browsing."""
        if self._flush is not None:
            self._flush.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
        if self._zc is not None:
            with contextlib.suppress(Exception):
                await self._zc.async_unregister_all_services()
            with contextlib.suppress(Exception):
                await self._zc.async_close()
