"""Internal queries (reference 3.7), the key manager's aggregation, and name conflicts (3.8).

:class:`InternalQueries` answers the ``_serf_`` queries we receive (ping, conflict, the key
operations) and runs the ones we start ourselves: a key request aggregated over every
member's response, and a name-conflict vote. It works through the owning
:class:`serf.core.serf.SerfCore` and its :class:`serf.core.queries.QueryManager`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serf.address import normalize_ip
from serf.core import io as sio
from serf.core.queries import INTERNAL_QUERY_PREFIX, OutQuery
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.memberlist.state import Node
from serf.telemetry import DEBUG, ERR, INFO, WARN, go_bytes, go_ip
from serf.wire.keyring import KEY_SIZES
from serf.wire.messages import (
    Member,
    MessageConflictResponse,
    MessageKeyRequest,
    MessageKeyResponse,
    MessageQueryResponse,
)

if TYPE_CHECKING:
    from serf.core.serf import SerfCore

__all__ = ["KEY_OPS", "InternalQueries"]

KEY_OPS = {"install": "install-key", "use": "use-key", "remove": "remove-key", "list": "list-keys"}


class InternalQueries:
    """The internal-query side of one :class:`~serf.core.serf.SerfCore`."""

    def __init__(self, core: SerfCore) -> None:
        self.core = core
        self.conflict_running = False

    def internal_query(self, q: sio.QueryHandle) -> None:
        core = self.core
        op = q.name[len(INTERNAL_QUERY_PREFIX) :]
        if op == "ping":
            return
        if op == "conflict":
            node = q.payload.decode("utf-8", "surrogateescape")
            if node == core.name:
                return
            core._log(DEBUG, f"Got conflict resolution query for '{node}'")
            m = core._members.get(node)
            member = None
            if m is not None:
                s = m.snapshot()
                member = Member(
                    s.name, s.addr, s.port, dict(s.tags), int(s.status),
                    s.protocol_min, s.protocol_max, s.protocol_cur,
                    s.delegate_min, s.delegate_max, s.delegate_cur,
                )  # fmt: skip
            core._queries.respond(q.ltime, q.id, core.codec.encode(MessageConflictResponse(member)))
            return
        if op in ("install-key", "use-key", "remove-key"):
            result, message = self.key_op(op, q.payload)
            if not result and message:
                core._log(ERR, message)
            resp = MessageKeyResponse(result, message, None, "")
            core._queries.respond(q.ltime, q.id, core.codec.encode(resp))
            return
        if op == "list-keys":
            self.list_keys(q)
            return
        core._log(WARN, f"Unhandled internal query '{op}'")

    def key_op(self, op: str, payload: bytes) -> tuple[bool, str]:
        core = self.core
        try:
            req = core.codec.decode_serf(payload)
        except Exception:
            return False, ""
        if not isinstance(req, MessageKeyRequest):
            return False, ""
        keyring = core.memberlist.keyring
        if keyring is None:
            return False, "No keyring to modify (encryption not enabled)"
        core._log(INFO, f"Received {op} query")
        key = bytes(req.key or b"")
        if op == "install-key" and len(key) not in KEY_SIZES:
            return False, "key size must be 16, 24 or 32 bytes"  # Go's words, as Go answers
        try:
            if op == "install-key":
                keyring.add_key(key)
            elif op == "use-key":
                keyring.use_key(key)
            else:
                keyring.remove_key(key)
        except ValueError as exc:
            what = {"install-key": "install", "use-key": "change primary", "remove-key": "remove"}
            core._log(ERR, f"Failed to {what[op]} key: {exc}")
            return False, str(exc)
        core._emit(sio.KeyringChanged(tuple(keyring.keys)))
        return True, ""

    def list_keys(self, q: sio.QueryHandle) -> None:
        core = self.core
        keyring = core.memberlist.keyring
        if keyring is None:
            core._log(ERR, "Keyring is empty (encryption not enabled)")
            resp = MessageKeyResponse(False, "Keyring is empty (encryption not enabled)", None)
            core._queries.respond(q.ltime, q.id, core.codec.encode(resp))
            return
        core._log(INFO, "Received list-keys query")
        keys = keyring.to_base64()
        primary = keys[0] if keys else ""
        limit = core.config.query_response_size_limit
        resp = MessageKeyResponse(True, "", keys, primary)
        raw = core.codec.encode(resp)
        probe = MessageQueryResponse(q.ltime, q.id, core.name, 0, raw)
        if len(core.codec.encode(probe)) > limit:
            n = len(keys)
            i = min(n, limit // 25)
            while i >= 0:
                msg = f"truncated key list response, showing first {i} of {n} keys"
                raw = core.codec.encode(MessageKeyResponse(True, msg, keys[:i], primary))
                probe = MessageQueryResponse(q.ltime, q.id, core.name, 0, raw)
                if len(core.codec.encode(probe)) <= limit:
                    core._log(WARN, msg)
                    break
                i -= 1
            else:
                core._log(ERR, "Failed to truncate response so that it fits into message")
                return
        core._queries.respond(q.ltime, q.id, raw)

    def key_request(self, req: sio.KeyRequest) -> None:
        core = self.core
        op = KEY_OPS.get(req.op)
        if op is None:
            bad = f"unknown key operation {req.op!r}"
            core._emit(mio.RequestCompleted(req.request_id, error=bad))
            return
        agg = sio.KeyResponse(num_nodes=core.memberlist.num_members())
        asked = {n.name for n in core.memberlist.members()}
        answered: set[str] = set()
        payload = core.codec.encode(MessageKeyRequest(req.key if op != "list-keys" else b""))

        def on_response(q: OutQuery, node: str, body: bytes) -> None:
            agg.num_resp += 1
            answered.add(node)
            resp: object = None
            # Go's words for an answer of another type and for one that does not decode
            if body[:1] != bytes([MessageKeyResponse.TYPE]):
                agg.messages[node] = f"Invalid key query response type: {go_bytes(body)}"
            else:
                try:
                    resp = core.codec.decode_serf(body)
                except Exception:
                    pass
                if not isinstance(resp, MessageKeyResponse):
                    agg.messages[node] = f"Failed to decode key query response: {go_bytes(body)}"
            if not isinstance(resp, MessageKeyResponse):
                agg.num_err += 1
            else:
                if not resp.result:
                    agg.messages[node] = resp.message
                    agg.num_err += 1
                elif resp.message:
                    agg.messages[node] = resp.message
                    core._log(WARN, resp.message)
                for k in resp.keys or ():
                    agg.keys[k] = agg.keys.get(k, 0) + 1
                agg.primary_keys[resp.primary_key] = agg.primary_keys.get(resp.primary_key, 0) + 1
            if agg.num_resp == agg.num_nodes:
                core._queries.finish_query(q)

        def on_finish() -> None:
            agg.not_answered = sorted(asked - answered)
            err: str | None = None
            if agg.num_err > 0:
                err = f"{agg.num_err}/{agg.num_nodes} nodes reported failure"
            elif agg.num_resp != agg.num_nodes:
                err = f"{agg.num_resp}/{agg.num_nodes} nodes reported success"
            core._emit(mio.RequestCompleted(req.request_id, result=agg, error=err))

        q, err = core._queries.start_query(
            -1,
            INTERNAL_QUERY_PREFIX + op,
            payload,
            relay_factor=req.relay_factor,
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            core._emit(mio.RequestCompleted(req.request_id, error=err))

    def conflict(self, existing: Node, other: Node) -> None:
        core = self.core
        if existing.name != core.name:
            core._log(
                WARN,
                f"Name conflict for '{existing.name}' both {go_ip(existing.addr)}:{existing.port}"
                f" and {go_ip(other.addr)}:{other.port} are claiming",
            )
            return
        resolve = core.config.enable_name_conflict_resolution
        core._log(
            ERR,
            f"Node name conflicts with another node at {go_ip(other.addr)}:{other.port}. "
            f"Names must be unique! (Resolution enabled: {'true' if resolve else 'false'})",
        )
        if not resolve:
            return
        if self.conflict_running or core.serf_state is SerfState.SHUTDOWN:
            return
        self.conflict_running = True
        votes = [0, 0]  # responses, matching

        def on_response(q: OutQuery, node: str, body: bytes) -> None:
            if not body or body[0] != 6:
                return
            try:
                resp = core.codec.decode_serf(body)
            except Exception:
                return
            if not isinstance(resp, MessageConflictResponse):
                return
            votes[0] += 1
            m = resp.member
            if (
                m is not None
                and m.addr is not None
                and normalize_ip(bytes(m.addr)) == normalize_ip(core._ip)
                and m.port == core.advertise.port
            ):
                votes[1] += 1

        def on_finish() -> None:
            self.conflict_running = False
            if votes[0] == 0:
                # Differs from Go, which quits on 0/0: no answer is no evidence, and one forged
                # alive (plaintext gossip) must not shut down a lone node or one whose peers'
                # answers were lost. The conflict stays visible in the log and the stats.
                core.stats_counters["name_conflicts_unanswered"] += 1
                core._log(WARN, "name conflict resolution got no answers: keeping our name")
                return
            if votes[1] >= votes[0] // 2 + 1:
                core._log(INFO, f"majority in name conflict resolution [{votes[1]} / {votes[0]}]")
            else:
                core._log(
                    WARN,
                    f"minority in name conflict resolution, quiting [{votes[1]} / {votes[0]}]",
                )
                core._shutdown()
                core._emit(
                    sio.ShutdownRequired(
                        f"name conflict for {core.name!r} lost: {votes[1]}/{votes[0]} votes"
                    )
                )

        q, _ = core._queries.start_query(
            -1,
            INTERNAL_QUERY_PREFIX + "conflict",
            core.name.encode("utf-8", "surrogateescape"),
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            self.conflict_running = False
