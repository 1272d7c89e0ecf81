"""pyserf: HashiCorp serf for Python.

Decentralized cluster membership, failure detection and orchestration. The wire layer
(:mod:`serf.wire`) is in place: message classes, the ``lpe`` and ``go`` codecs and the shared
framing. The memberlist, serf and agent layers build on it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
