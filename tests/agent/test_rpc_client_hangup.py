"""An agent that hangs up during the RPC handshake: the client says Go's ``client closed``
whether the hang-up reaches it as an EOF or as a reset (a close with our handshake unread in
the server's buffer sends a reset; which one the client sees was a race, and the reset gave
``connection error: [Errno 104] ...``, which no Go client prints)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from serf.cli.membership import members
from serf.cli.rpc_client import RPCClient, RPCConnectionError


def _hang_up_server(reset: bool, connections: int) -> tuple[int, threading.Thread]:
    """A listener that accepts, waits until the client's handshake has arrived, and closes:
    with a reset (SO_LINGER 0) or an orderly EOF (after reading what was sent)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(connections)
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            for _ in range(connections):
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(30)
                    if reset:
                        conn.recv(1, socket.MSG_PEEK)  # the handshake is in our buffer
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    else:
                        conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "eof"])
def test_a_hang_up_during_the_handshake_is_client_closed(reset: bool) -> None:
    port, thread = _hang_up_server(reset, 1)

    async def main() -> None:
        with pytest.raises(RPCConnectionError) as info:
            await RPCClient.connect(f"127.0.0.1:{port}", timeout=30)
        assert str(info.value) == "client closed"

    asyncio.run(asyncio.wait_for(main(), 60))
    thread.join(30)


def test_the_cli_says_what_go_says(capsys: pytest.CaptureFixture[str]) -> None:
    port, thread = _hang_up_server(True, 1)
    assert members([f"-rpc-addr=127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().out == "Error connecting to Serf agent: client closed\n"
    thread.join(30)
