"""The agent's metric sinks, from its config (Go's ``command.go`` telemetry setup).

As Go's agent: an in-memory sink always (for ``serf info -metrics``, SIGUSR1 and the status
page), plus a statsite (TCP) and/or statsd (UDP) sink when ``statsite_addr`` / ``statsd_addr``
are set, all under the service name ``serf-agent``; with a network sink the host name goes
before gauge keys (Go's ``EnableHostname``); ``runtime.*`` gauges every 10 s (Go: every
second). Ours: a Prometheus sink when ``prometheus_addr`` is set (or the status page is on and
prometheus-client is installed, for its ``/metrics``).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from serf.address import Address
from serf.agent.config import AgentConfig
from serf.metrics import (
    InmemSink,
    Metrics,
    MetricsSink,
    RuntimeReporter,
    StatsdSink,
    StatsiteSink,
)
from serf.runtime.advertise import AdvertiseError, parse_host_port

__all__ = ["AgentSinks", "SinkError", "start_sinks"]

log = logging.getLogger("serf.agent")

#: go-metrics' service name in Go's agent
SERVICE_NAME = "serf-agent"


class SinkError(Exception):
    """A sink could not start (the text is the one line to print)."""


@dataclass
class AgentSinks:
    """The running sinks; :attr:`metrics` is what the serf node records into."""

    metrics: Metrics
    inmem: InmemSink
    prometheus: Any = None
    _closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Stop the network sinks and the Prometheus server."""
        self.metrics.close()
        for closer in self._closers:
            try:
                closer()
            except Exception:  # already closed
                log.debug("agent: closing a metrics sink failed", exc_info=True)


def _address(text: str, what: str) -> Address:
    try:
        return parse_host_port(text, what)
    except AdvertiseError as exc:
        raise SinkError(str(exc)) from None


def start_sinks(cfg: AgentConfig) -> AgentSinks:
    """Build and start the sinks ``cfg`` asks for (on the running loop)."""
    inmem = InmemSink()
    sinks: list[MetricsSink] = []
    network = False
    for addr_text, cls, what in (
        (cfg.statsite_addr, StatsiteSink, "statsite"),
        (cfg.statsd_addr, StatsdSink, "statsd"),
    ):
        if addr_text:
            sink = cls(_address(addr_text, f"{what} address"))
            sink.start()
            sinks.append(sink)
            network = True
    prometheus = None
    closers: list[Any] = []
    if cfg.prometheus_addr or cfg.http_addr:
        from serf.metrics_prometheus import PrometheusSink, PrometheusUnavailable

        try:
            prometheus = PrometheusSink()
        except PrometheusUnavailable as exc:
            if cfg.prometheus_addr:
                raise SinkError(str(exc)) from None
        if prometheus is not None:
            sinks.append(prometheus)
            if cfg.prometheus_addr:
                addr = _address(cfg.prometheus_addr, "Prometheus address")
                try:
                    server = prometheus.serve(addr.host, addr.port)
                except OSError as exc:
                    raise SinkError(f"Failed to start Prometheus listener: {exc}") from None
                if isinstance(server, tuple):  # prometheus-client >= 0.17: (server, thread)
                    closers.append(server[0].shutdown)
                    closers.append(server[0].server_close)
    sinks.append(inmem)
    host = socket.gethostname() if network else ""
    metrics = Metrics(sinks, service_name=SERVICE_NAME, host_name=host)
    runtime = RuntimeReporter(metrics)  # Go's EnableRuntimeMetrics: runtime.* gauges
    runtime.start()
    closers.append(runtime.close)
    return AgentSinks(metrics, inmem, prometheus, closers)
