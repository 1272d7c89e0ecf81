"""Optional dependencies: which pip extra brings which feature, and the error when one is
missing.

``pip install pyserf`` is the library and the agent over UDP + TCP. ``pyserf[quic]`` adds
the QUIC transport (aioquic), ``pyserf[mdns]`` the agent's mDNS discovery (zeroconf),
``pyserf[uvloop]`` the event loop ``serf agent`` runs on when it is installed (unless
``SERF_EVENT_LOOP=asyncio``; the CLI's one-shot commands stay on asyncio's),
``pyserf[http]`` the agent's HTTP API and status page (aiohttp), ``pyserf[trio]`` the trio
runtime (:mod:`serf.runtime.trio_serf`), and ``pyserf[all]`` all of them.
"""

from __future__ import annotations

__all__ = ["MissingExtraError", "missing_extra"]


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; the text names the
    pip extra that brings it."""


def missing_extra(module: str, extra: str, feature: str) -> MissingExtraError:
    """The error for ``feature`` when ``module`` (from the pip extra ``extra``) is missing."""
    return MissingExtraError(
        f"{feature} needs the {module!r} package: pip install 'pyserf[{extra}]'"
    )
