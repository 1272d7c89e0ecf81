"""Internal queries (reference 3.7), the key manager's aggregation, and name conflicts (3.8).

:class:`InternalQueries` answers the ``_serf_`` queries we receive (ping, conflict, the key
operations) and runs the ones we start ourselves: a key request aggregated over every
member's response, and a name-conflict vote (it is the memberlist core's
``ConflictDelegate``). It works through the :class:`~serf.core.services.Services`, the
:class:`serf.core.queries.QueryManager`, the members and the memberlist core's keyring.
"""

from __future__ import annotations

from collections.abc import Callable

from serf.address import normalize_ip
from serf.core import io as sio
from serf.core.intents import Membership
from serf.core.queries import INTERNAL_QUERY_PREFIX, OutQuery, QueryManager
from serf.core.services import Services
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.memberlist.core import MemberlistCore
from serf.memberlist.state import Node
from serf.telemetry import DEBUG, ERR, INFO, WARN, go_bytes, go_ip
from serf.wire.errors import DecodeError
from serf.wire.keyring import KEY_SIZES
from serf.wire.messages import (
    Member,
    MessageConflictResponse,
    MessageKeyRequest,
    MessageKeyResponse,
    MessageQueryResponse,
)

__all__ = ["KEY_OPS", "InternalQueries"]

KEY_OPS = {"install": "install-key", "use": "use-key", "remove": "remove-key", "list": "list-keys"}


class InternalQueries:
    """The internal-query side of one serf core (see the module comment). ``on_lost`` is
    called with the reason when we lose a name-conflict vote (the core shuts down)."""

    def __init__(
        self,
        services: Services,
        queries: QueryManager,
        membership: Membership,
        memberlist: Callable[[], MemberlistCore],
        on_lost: Callable[[str], None],
    ) -> None:
        self._s = services
        self._queries = queries
        self._membership = membership
        self._memberlist = memberlist
        self._on_lost = on_lost
        self.conflict_running = False
        queries.internal = self.internal_query

    def internal_query(self, q: sio.QueryHandle) -> None:
        op = q.name[len(INTERNAL_QUERY_PREFIX) :]
        if op == "ping":
            return
        if op == "conflict":
            node = q.payload.decode("utf-8", "surrogateescape")
            if node == self._s.name:
                return
            self._s.log(DEBUG, f"Got conflict resolution query for '{node}'")
            m = self._membership.get(node)
            member = None
            if m is not None:
                s = m.snapshot()
                member = Member(
                    s.name, s.addr, s.port, dict(s.tags), int(s.status),
                    s.protocol_min, s.protocol_max, s.protocol_cur,
                    s.delegate_min, s.delegate_max, s.delegate_cur,
                )  # fmt: skip
            self._queries.respond(
                q.ltime, q.id, self._s.codec.encode(MessageConflictResponse(member))
            )
            return
        if op in ("install-key", "use-key", "remove-key"):
            result, message = self.key_op(op, q.payload)
            if not result and message:
                self._s.log(ERR, message)
            resp = MessageKeyResponse(result, message, None, "")
            self._queries.respond(q.ltime, q.id, self._s.codec.encode(resp))
            return
        if op == "list-keys":
            self.list_keys(q)
            return
        self._s.log(WARN, f"Unhandled internal query '{op}'")

    def key_op(self, op: str, payload: bytes) -> tuple[bool, str]:
        try:
            req = self._s.codec.decode_serf(payload)
        except DecodeError:
            return False, ""
        if not isinstance(req, MessageKeyRequest):
            return False, ""
        keyring = self._memberlist().keyring
        if keyring is None:
            return False, "No keyring to modify (encryption not enabled)"
        self._s.log(INFO, f"Received {op} query")
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
            self._s.log(ERR, f"Failed to {what[op]} key: {exc}")
            return False, str(exc)
        self._s.emit(sio.KeyringChanged(tuple(keyring.keys)))
        return True, ""

    def list_keys(self, q: sio.QueryHandle) -> None:
        keyring = self._memberlist().keyring
        if keyring is None:
            self._s.log(ERR, "Keyring is empty (encryption not enabled)")
            resp = MessageKeyResponse(False, "Keyring is empty (encryption not enabled)", None)
            self._queries.respond(q.ltime, q.id, self._s.codec.encode(resp))
            return
        self._s.log(INFO, "Received list-keys query")
        keys = keyring.to_base64()
        primary = keys[0] if keys else ""
        limit = self._s.config.query_response_size_limit
        resp = MessageKeyResponse(True, "", keys, primary)
        raw = self._s.codec.encode(resp)
        probe = MessageQueryResponse(q.ltime, q.id, self._s.name, 0, raw)
        if len(self._s.codec.encode(probe)) > limit:
            n = len(keys)
            i = min(n, limit // 25)
            while i >= 0:
                msg = f"truncated key list response, showing first {i} of {n} keys"
                raw = self._s.codec.encode(MessageKeyResponse(True, msg, keys[:i], primary))
                probe = MessageQueryResponse(q.ltime, q.id, self._s.name, 0, raw)
                if len(self._s.codec.encode(probe)) <= limit:
                    self._s.log(WARN, msg)
                    break
                i -= 1
            else:
                self._s.log(ERR, "Failed to truncate response so that it fits into message")
                return
        self._queries.respond(q.ltime, q.id, raw)

    def key_request(self, req: sio.KeyRequest) -> None:
        op = KEY_OPS.get(req.op)
        if op is None:
            bad = f"unknown key operation {req.op!r}"
            self._s.emit(mio.RequestCompleted(req.request_id, error=bad))
            return
        agg = sio.KeyResponse(num_nodes=self._memberlist().num_members())
        asked = {n.name for n in self._memberlist().members()}
        answered: set[str] = set()
        payload = self._s.codec.encode(MessageKeyRequest(req.key if op != "list-keys" else b""))

        def on_response(q: OutQuery, node: str, body: bytes) -> None:
            agg.num_resp += 1
            answered.add(node)
            resp: object = None
            # Go's words for an answer of another type and for one that does not decode
            if body[:1] != bytes([MessageKeyResponse.TYPE]):
                agg.messages[node] = f"Invalid key query response type: {go_bytes(body)}"
            else:
                try:
                    resp = self._s.codec.decode_serf(body)
                except DecodeError:
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
                    self._s.log(WARN, resp.message)
                for k in resp.keys or ():
                    agg.keys[k] = agg.keys.get(k, 0) + 1
                agg.primary_keys[resp.primary_key] = agg.primary_keys.get(resp.primary_key, 0) + 1
            if agg.num_resp == agg.num_nodes:
                self._queries.finish_query(q)

        def on_finish() -> None:
            agg.not_answered = sorted(asked - answered)
            err: str | None = None
            if agg.num_err > 0:
                err = f"{agg.num_err}/{agg.num_nodes} nodes reported failure"
            elif agg.num_resp != agg.num_nodes:
                err = f"{agg.num_resp}/{agg.num_nodes} nodes reported success"
            self._s.emit(mio.RequestCompleted(req.request_id, result=agg, error=err))

        q, err = self._queries.start_query(
            -1,
            INTERNAL_QUERY_PREFIX + op,
            payload,
            relay_factor=req.relay_factor,
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            self._s.emit(mio.RequestCompleted(req.request_id, error=err))

    def notify_conflict(self, existing: Node, other: Node) -> None:
        if existing.name != self._s.name:
            self._s.log(
                WARN,
                f"Name conflict for '{existing.name}' both {go_ip(existing.addr)}:{existing.port}"
                f" and {go_ip(other.addr)}:{other.port} are claiming",
            )
            return
        resolve = self._s.config.enable_name_conflict_resolution
        self._s.log(
            ERR,
            f"Node name conflicts with another node at {go_ip(other.addr)}:{other.port}. "
            f"Names must be unique! (Resolution enabled: {'true' if resolve else 'false'})",
        )
        if not resolve:
            return
        if self.conflict_running or self._s.serf_state is SerfState.SHUTDOWN:
            return
        self.conflict_running = True
        votes = [0, 0]  # responses, matching

        def on_response(q: OutQuery, node: str, body: bytes) -> None:
            if not body or body[0] != 6:
                return
            try:
                resp = self._s.codec.decode_serf(body)
            except DecodeError:
                return
            if not isinstance(resp, MessageConflictResponse):
                return
            votes[0] += 1
            m = resp.member
            if (
                m is not None
                and m.addr is not None
                and normalize_ip(bytes(m.addr)) == normalize_ip(self._s.advertise.ip_bytes())
                and m.port == self._s.advertise.port
            ):
                votes[1] += 1

        def on_finish() -> None:
            self.conflict_running = False
            if votes[0] == 0:
                # Differs from Go, which quits on 0/0: no answer is no evidence, and one forged
                # alive (plaintext gossip) must not shut down a lone node or one whose peers'
                # answers were lost. The conflict stays visible in the log and the stats.
                self._s.stats_counters["name_conflicts_unanswered"] += 1
                self._s.log(WARN, "name conflict resolution got no answers: keeping our name")
                return
            if votes[1] >= votes[0] // 2 + 1:
                self._s.log(INFO, f"majority in name conflict resolution [{votes[1]} / {votes[0]}]")
            else:
                self._s.log(
                    WARN,
                    f"minority in name conflict resolution, quiting [{votes[1]} / {votes[0]}]",
                )
                self._on_lost(
                    f"name conflict for {self._s.name!r} lost: {votes[1]}/{votes[0]} votes"
                )

        q, _ = self._queries.start_query(
            -1,
            INTERNAL_QUERY_PREFIX + "conflict",
            self._s.name.encode("utf-8", "surrogateescape"),
            on_response=on_response,
            on_finish=on_finish,
        )
        if q is None:
            self.conflict_running = False
