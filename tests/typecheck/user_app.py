"""A user's file as the README writes it: ``mypy --strict`` must reject the two marked lines.

Not collected by pytest (no ``test_`` prefix); ``tests/test_typing.py`` runs mypy on it.
"""

from __future__ import annotations

import asyncio

from serf import MemberStatus, Serf, SerfConfig, SerfMember, UserEvent


async def main() -> None:
    s = await Serf.create(SerfConfig(node_name="typed"))
    alive: list[SerfMember] = [m for m in s.members() if m.status == MemberStatus.ALIVE]
    print(alive)
    s.this_does_not_exist()  # expect-error: attr-defined
    await s.join([1234])  # expect-error: list-item
    async for event in s.events():
        if isinstance(event, UserEvent):
            print(event.name, event.payload)
    await s.shutdown()


asyncio.run(main())
