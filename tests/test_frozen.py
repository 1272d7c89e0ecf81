"""serf._frozen.fast_init: the cheaper __init__ keeps a frozen dataclass's behaviour."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest

from serf._frozen import fast_init
from serf.memberlist import io
from serf.memberlist.state import Broadcast, NotifyJoin
from serf.telemetry import LogLine, MetricSample


@dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class _Fast:
    a: int
    b: str = "x"
    c: tuple[int, ...] = ()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "y"), {}), ((1,), {"c": (2,)}), ((), {"a": 3, "b": "z", "c": (4, 5)})],
)
def test_same_fields_repr_eq_hash(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    plain, fast = _Plain(*args, **kwargs), _Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
    assert repr(fast) == repr(plain).replace("_Plain", "_Fast")
    assert fast == _Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert hash(fast) == hash(_Fast(*args, **kwargs))  # type: ignore[arg-type]


def test_same_signature_and_errors() -> None:
    assert str(inspect.signature(_Fast)) == str(inspect.signature(_Plain))
    with pytest.raises(TypeError):
        _Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast(1, "y", (), 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Fast(1, d=2)  # type: ignore[call-arg]


def test_stays_frozen() -> None:
    fast = _Fast(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 2  # type: ignore[misc]


def test_refuses_what_it_cannot_copy() -> None:
    @dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = field(kw_only=True)

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (NotFrozen, Factory, PostInit, KwOnly, NoSlots):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_hot_effects_use_it() -> None:
    for cls in (
        Broadcast,
        NotifyJoin,
        io.NodeJoined,
        io.SendPacket,
        io.PacketReceived,
        MetricSample,
        LogLine,
    ):
        # fast_init's setters (dataclass's own frozen __init__ closes over its builtins)
        assert all(v.startswith("_set_") for v in cls.__init__.__code__.co_freevars), cls
    assert MetricSample("counter", ("a",), 1.0).labels == ()
