"""A Prometheus sink (the optional extra ``pip install 'pyserf[prometheus]'``).

As go-metrics' prometheus sink: a key's parts are joined with ``_`` and ``' '``, ``.``, ``=``,
``-`` and ``/`` become ``_`` (``memberlist.msg.alive`` -> ``memberlist_msg_alive``,
``serf.coordinate.adjustment-ms`` -> ``serf_coordinate_adjustment_ms``); labels stay labels;
counters are counters, gauges gauges and samples summaries. One difference: the Python
client library exposes a counter's sample as ``<name>_total`` (Go's client keeps ``<name>``).
Names that differ only by their labels share one metric family.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from serf.telemetry import Labels

__all__ = ["PrometheusSink", "prometheus_name", "PrometheusUnavailable"]

_FORBIDDEN = str.maketrans({" ": "_", ".": "_", "=": "_", "-": "_", "/": "_"})


class PrometheusUnavailable(RuntimeError):
    """prometheus-client is not installed."""


def prometheus_name(key: Sequence[str]) -> str:
    """go-metrics' prometheus flattening of a key."""
    return "_".join(key).translate(_FORBIDDEN)


class PrometheusSink:
    """Records samples into a ``prometheus_client`` registry (its own unless given)."""

    def __init__(self, registry: Any = None) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise PrometheusUnavailable(
                "Prometheus needs prometheus-client: pip install 'pyserf[prometheus]'"
            ) from None
        self._prom = prometheus_client
        self.registry = registry if registry is not None else prometheus_client.CollectorRegistry()
        self._families: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()  # the exposition thread reads while the loop writes

    def _family(self, kind: str, key: Sequence[str], labels: Labels) -> Any:
        name = prometheus_name(key)
        fam = self._families.get((kind, name))
        if fam is None:
            with self._lock:
                fam = self._families.get((kind, name))
                if fam is None:
                    cls = {"counter": self._prom.Counter, "gauge": self._prom.Gauge}.get(
                        kind, self._prom.Summary
                    )
                    names = [k for k, _ in labels]
                    fam = cls(name, ".".join(key), names, registry=self.registry)
                    self._families[(kind, name)] = fam
        if labels:
            try:
                return fam.labels(**dict(labels))
            except ValueError:  # another label set under the same name: keep the first
                return None
        return fam

    def incr_counter(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Counter ``+= value``."""
        m = self._family("counter", key, labels)
        if m is not None and value >= 0:
            m.inc(value)

    def set_gauge(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Gauge ``= value``."""
        m = self._family("gauge", key, labels)
        if m is not None:
            m.set(value)

    def add_sample(self, key: Sequence[str], value: float, labels: Labels) -> None:
        """Summary observation."""
        m = self._family("summary", key, labels)
        if m is not None:
            m.observe(value)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (for ``/metrics``)."""
        data: bytes = self._prom.generate_latest(self.registry)
        return data

    def serve(self, host: str, port: int) -> Any:
        """Serve ``/metrics`` on ``host:port`` (prometheus-client's own server thread)."""
        return self._prom.start_http_server(port, addr=host, registry=self.registry)
