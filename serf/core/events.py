"""User events (reference 3.5, 3.6): the ones we send and the ones we receive.

:class:`UserEvents` owns the duplicate-suppression ring of user events (its slots are also
what push/pull carries) and the oldest event time we accept (raised by a snapshot, or by a
join that ignores old events).
"""

from __future__ import annotations

from serf.config import USER_EVENT_SIZE_LIMIT
from serf.core import io as sio
from serf.core.delivery import Delivery
from serf.core.lamport import LamportRing
from serf.core.services import Broadcasts, Services
from serf.memberlist import io as mio
from serf.telemetry import COUNTER, WARN, MetricSample
from serf.wire.messages import MessageUserEvent, UserEvent, UserEvents

__all__ = ["UserEventManager"]

_EVENTS = MetricSample(COUNTER, ("serf", "events"), 1.0)


class UserEventManager:
    """User events of one serf core (see the module comment)."""

    def __init__(self, services: Services, delivery: Delivery, broadcasts: Broadcasts) -> None:
        self._s = services
        self._delivery = delivery
        self._broadcasts = broadcasts
        self.min_time = 0
        #: joins in progress that ignore old events (push/pull then raises ``min_time``)
        self.ignore_old = 0
        self.ring: LamportRing[tuple[str, bytes]] = LamportRing(services.config.event_buffer)

    def handle(self, msg: MessageUserEvent, from_push_pull: bool = False) -> bool:
        """A user event from the network (or push/pull); True when it is new."""
        s = self._s
        ltime = msg.ltime
        clock = s.event_clock
        clock.witness(ltime)
        if ltime < self.min_time:
            return False
        cur = clock.time()
        ring = self.ring
        if ring.too_old(ltime, cur):
            s.stats_counters["events_dropped_old"] += 1
            s.log(WARN, f"received old event {msg.name} from time {ltime} (current: {cur})")
            return False
        payload = msg.payload
        if type(payload) is not bytes:  # the decoders give bytes; a caller may not
            payload = bytes(payload or b"")
        if not ring.add(ltime, (msg.name, payload)):
            return False  # a duplicate: most user-event messages under an event load
        s.emit(_EVENTS)
        s.emit(MetricSample(COUNTER, ("serf", "events", msg.name), 1.0))
        self._delivery.user_event(msg.ltime, msg.name, payload, msg.cc and not from_push_pull)
        return True

    def slots(self) -> list[UserEvents | None]:
        """The ring as push/pull carries it."""
        if self.ring.empty():  # no user event yet: every push/pull until the first one
            return [None] * len(self.ring)
        return [
            None if slot is None else UserEvents(slot[0], [UserEvent(n, p) for n, p in slot[1]])
            for slot in self.ring.slots()
        ]

    def request(self, req: sio.UserEventRequest) -> None:
        """Send a user event (Go's ``UserEvent``), within the size limits."""
        s = self._s
        limit = s.config.user_event_size_limit
        size = len(req.name.encode("utf-8", "surrogateescape")) + len(req.payload)
        err = None
        if size > limit:
            err = f"user event exceeds configured limit of {limit} bytes before encoding"
        elif size > USER_EVENT_SIZE_LIMIT:
            err = f"user event exceeds sane limit of {USER_EVENT_SIZE_LIMIT} bytes before encoding"
        if err is None:
            msg = MessageUserEvent(s.event_clock.time(), req.name, req.payload, req.coalesce)
            raw = s.codec.encode(msg)
            if len(raw) > limit:  # Go v0.11.0's words
                err = f"encoded user event exceeds configured limit of {limit} bytes after encoding"
            elif len(raw) > USER_EVENT_SIZE_LIMIT:
                err = (
                    "encoded user event exceeds reasonable limit of "
                    f"{USER_EVENT_SIZE_LIMIT} bytes after encoding"
                )
            else:
                s.event_clock.increment()
                self.handle(msg)
                self._broadcasts.events.queue_broadcast(raw, unique=True)
        s.emit(mio.RequestCompleted(req.request_id, error=err))
