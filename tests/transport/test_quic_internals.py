"""The aioquic internals the QUIC transport uses (serf.transport.quic_internals) are where we
expect them. If this fails after an aioquic upgrade, fix quic_internals before shipping: it is
what makes QUIC listeners ask for and check client certificates."""

from __future__ import annotations

from aioquic.quic.configuration import QuicConfiguration

from serf.testing.certs import TestCA
from serf.transport import quic_internals


def test_aioquic_internals_still_work() -> None:
    ca = TestCA()
    configs = []
    for is_client, name in ((True, "client"), (False, "server")):
        issued = ca.issue(name)
        cfg = QuicConfiguration(is_client=is_client, alpn_protocols=["serf"])
        cfg.certificate, cfg.private_key = issued.certificate, issued.private_key
        if is_client:
            cfg.verify_mode = 0  # ssl.CERT_NONE: the check under test is ours
        configs.append(cfg)
    quic_internals.self_check(configs[0], configs[1], ca.pem())


def test_a_moved_internal_is_reported_by_name() -> None:
    class Moved:
        pass

    try:
        quic_internals.pending_datagrams(Moved())  # type: ignore[arg-type]
    except AttributeError as exc:
        assert "_datagrams_pending" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no error for a connection without the attribute")
