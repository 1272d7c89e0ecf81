"""Joining, leaving gracefully and forcing a member out (reference 3.12).

:class:`Lifecycle` carries out the join, leave and force-leave requests: it moves the node's
life-cycle state (alive -> leaving -> left), queues the intents and waits for their
broadcast, and asks the memberlist core to join or leave through the services.
"""

from __future__ import annotations

from collections.abc import Callable

from serf.core import io as sio
from serf.core.delivery import Delivery
from serf.core.events import UserEventManager
from serf.core.intents import Membership
from serf.core.services import Broadcasts, Services
from serf.core.state import SerfState
from serf.memberlist import io as mio
from serf.wire.messages import MessageLeave

__all__ = ["Lifecycle"]


class Lifecycle:
    """Join / leave / force-leave for one serf core (see the module comment)."""

    def __init__(
        self,
        services: Services,
        membership: Membership,
        delivery: Delivery,
        broadcasts: Broadcasts,
        user_events: UserEventManager,
    ) -> None:
        self._s = services
        self._membership = membership
        self._delivery = delivery
        self._broadcasts = broadcasts
        self._user_events = user_events

    def join(self, req: sio.SerfJoinRequest) -> None:
        s = self._s
        if self._s.serf_state is not SerfState.ALIVE:
            err = "Serf can't Join after Leave or Shutdown"
            s.emit(mio.RequestCompleted(req.request_id, result=0, error=err))
            return
        if req.ignore_old:
            self._user_events.ignore_old += 1

        def done(res: mio.RequestCompleted) -> None:
            if req.ignore_old:
                self._user_events.ignore_old -= 1
            if res.result and self._s.serf_state is SerfState.ALIVE:
                self._membership.broadcast_join(self._s.clock.time())
            s.emit(mio.RequestCompleted(req.request_id, result=res.result, error=res.error))

        s.ml_request(lambda rid: mio.JoinRequest(rid, req.addresses), done)

    def wait_broadcast(self, raw: bytes, timeout: float, then: Callable[[bool], None]) -> None:
        """Queue an intent and call ``then(finished)`` once it finished or timed out."""
        done = [False]
        token = 0

        def finished() -> None:
            if not done[0]:
                done[0] = True
                self._s.cancel(token)
                then(True)

        def timed_out() -> None:
            if not done[0]:
                done[0] = True
                then(False)

        token = self._s.after(timeout, timed_out)
        self._broadcasts.intents.queue_broadcast(raw, unique=True, on_finished=finished)

    def leave(self, req: sio.SerfLeaveRequest) -> None:
        s = self._s
        if self._s.serf_state is SerfState.LEFT:
            s.emit(mio.RequestCompleted(req.request_id))
            return
        if self._s.serf_state is SerfState.LEAVING:
            s.emit(mio.RequestCompleted(req.request_id, error="Leave already in progress"))
            return
        if self._s.serf_state is SerfState.SHUTDOWN:
            s.emit(mio.RequestCompleted(req.request_id, error="Leave called after Shutdown"))
            return
        self._s.serf_state = SerfState.LEAVING
        self._delivery.leave()
        msg = MessageLeave(self._s.clock.time(), self._s.name)
        self._s.clock.increment()
        self._membership.leave_intent(msg)
        cfg = self._s.config

        def finish() -> None:
            if self._s.serf_state is not SerfState.SHUTDOWN:
                self._s.serf_state = SerfState.LEFT
            s.emit(mio.RequestCompleted(req.request_id))

        def after_memberlist(res: mio.RequestCompleted) -> None:
            s.after(cfg.leave_propagate_delay, finish)

        def after_broadcast(_finished: bool) -> None:
            s.ml_request(lambda rid: mio.LeaveRequest(rid, cfg.broadcast_timeout), after_memberlist)

        if self._membership.others_alive():
            self.wait_broadcast(self._s.codec.encode(msg), cfg.broadcast_timeout, after_broadcast)
        else:
            after_broadcast(True)

    def force_leave(self, req: sio.ForceLeaveRequest) -> None:
        s = self._s
        msg = MessageLeave(self._s.clock.time(), req.node, req.prune)
        self._s.clock.increment()
        self._membership.leave_intent(msg)
        if not self._membership.others_alive():
            s.emit(mio.RequestCompleted(req.request_id))
            return

        def then(finished: bool) -> None:
            err = None if finished else "timed out broadcasting node removal"
            s.emit(mio.RequestCompleted(req.request_id, error=err))

        self.wait_broadcast(self._s.codec.encode(msg), self._s.config.broadcast_timeout, then)
