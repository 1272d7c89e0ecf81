"""The advertise rule (serf.runtime.advertise) on fake interface tables: Go's choice, each case."""

from __future__ import annotations

import pytest

from serf.address import Address
from serf.runtime.advertise import (
    AdvertiseError,
    advertise_address,
    interface_bind_host,
    is_forwardable,
    is_private,
    parse_host_port,
    private_ip,
)
from serf.runtime.interfaces import (
    InterfaceAddress,
    InterfaceTable,
    default_interface_from_proc_route,
)

LO = (InterfaceAddress("lo", "127.0.0.1", 8), InterfaceAddress("lo", "::1", 128))


def table(*addrs: tuple[str, str, int], default: str | None = "eth0") -> InterfaceTable:
    return InterfaceTable(LO + tuple(InterfaceAddress(*a) for a in addrs), default)


def wildcard(tbl: InterfaceTable, bind: str = "0.0.0.0", port: int = 7946) -> Address:
    return advertise_address(bind, port, interfaces=lambda: tbl)


def test_rfc1918_ipv4_only() -> None:
    assert wildcard(table(("eth0", "10.1.2.3", 24))) == Address("10.1.2.3", 7946)


def test_ula_ipv6_only() -> None:
    assert wildcard(table(("eth0", "fd00::5", 64))) == Address("fd00::5", 7946)


def test_both_families_ipv4_first() -> None:
    # go-sockaddr sorts IPv4 before IPv6 (AscIfType) among the default interface's addresses
    tbl = table(("eth0", "fd00::5", 64), ("eth0", "192.168.1.7", 24))
    assert wildcard(tbl) == Address("192.168.1.7", 7946)


def test_this_machine_shape_test_net_ipv4_is_not_forwardable() -> None:
    # 192.0.2.0/24 is private (RFC 6890) but blacklisted as not forwardable: Go picks the ULA
    tbl = table(("eth0", "192.0.2.2", 24), ("eth0", "fd00::2", 64), ("eth0", "fe80::1", 64))
    assert wildcard(tbl) == Address("fd00::2", 7946)
    assert is_private("192.0.2.2") and not is_forwardable("192.0.2.2")


def test_public_only_is_an_error_asking_for_advertise() -> None:
    tbl = table(("eth0", "11.0.0.2", 24), ("eth0", "2a00::2", 64))
    with pytest.raises(AdvertiseError, match=r"no private IP address found.*-advertise"):
        wildcard(tbl)


def test_loopback_and_link_local_only_is_an_error() -> None:
    with pytest.raises(AdvertiseError, match="no private IP"):
        wildcard(table(("eth0", "fe80::2", 64), ("eth0", "169.254.0.9", 16)))


def test_no_default_route_orders_nothing_but_private_still_wins() -> None:
    # as go-sockaddr: the default route only sorts; without one, any private address qualifies
    tbl = table(("eth1", "fd00::9", 64), ("eth0", "10.0.0.9", 8), default=None)
    assert wildcard(tbl) == Address("10.0.0.9", 7946)


def test_no_interfaces_at_all_is_an_error() -> None:
    with pytest.raises(AdvertiseError, match="no private IP"):
        wildcard(InterfaceTable((), None))


def test_default_interface_first_then_larger_network() -> None:
    tbl = table(
        ("eth1", "10.9.9.9", 8), ("eth0", "172.16.1.1", 24), ("eth0", "172.16.2.2", 16)
    )  # fmt: skip
    assert wildcard(tbl) == Address("172.16.2.2", 7946)


def test_interface_down_is_skipped() -> None:
    down = InterfaceAddress("eth0", "10.0.0.1", 24, up=False)
    tbl = InterfaceTable((down, InterfaceAddress("eth1", "10.0.0.2", 24)), "eth0")
    assert wildcard(tbl) == Address("10.0.0.2", 7946)


def test_go_sockaddr_counts_2001_slash_16_as_private() -> None:
    # a quirk kept on purpose: go-sockaddr lists 2001::/16 whole under RFC 6890
    assert private_ip(table(("eth0", "2001:4860::8", 64))) == "2001:4860::8"
    assert private_ip(table(("eth0", "2001:db8::8", 64))) is None  # documentation: blacklisted


def test_wildcard_ipv6_bind_uses_the_same_rule() -> None:
    assert wildcard(table(("eth0", "fd00::5", 64)), bind="::") == Address("fd00::5", 7946)


def test_wildcard_keeps_the_bound_port() -> None:
    assert wildcard(table(("eth0", "10.1.2.3", 24)), port=40123).port == 40123


def test_specific_bind_is_advertised_as_is_without_reading_interfaces() -> None:
    def boom() -> InterfaceTable:
        raise AssertionError("a specific bind must not read the interface table")

    assert advertise_address("10.0.0.7", 7000, interfaces=boom) == Address("10.0.0.7", 7000)
    assert advertise_address("::1", 7000, interfaces=boom) == Address("::1", 7000)


def test_explicit_advertise_always_wins() -> None:
    def boom() -> InterfaceTable:
        raise AssertionError("an explicit advertise address must not read interfaces")

    got = advertise_address("0.0.0.0", 7946, "203.0.113.9", 8000, interfaces=boom)
    assert got == Address("203.0.113.9", 8000)
    assert advertise_address("127.0.0.1", 5555, "10.0.0.1", 0) == Address("10.0.0.1", 5555)


def test_explicit_advertise_ipv6_bracketed_or_bare() -> None:
    assert advertise_address("0.0.0.0", 1, "[fd00::5]", 7946) == Address("fd00::5", 7946)
    assert advertise_address("0.0.0.0", 1, "FD00:0::5", 7946) == Address("fd00::5", 7946)


def test_explicit_advertise_must_be_an_ip() -> None:
    with pytest.raises(AdvertiseError, match="failed to parse advertise address 'db1'"):
        advertise_address("0.0.0.0", 7946, "db1", 7946)


def test_interface_read_failure_is_an_advertise_error() -> None:
    def fail() -> InterfaceTable:
        raise PermissionError(1, "netlink refused")

    with pytest.raises(AdvertiseError, match="failed to get interface addresses"):
        advertise_address("0.0.0.0", 7946, interfaces=fail)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("[fd00::5]:7946", Address("fd00::5", 7946)),
        ("[fd00::5]", Address("fd00::5", 7946)),
        ("fd00::5", Address("fd00::5", 7946)),
        ("10.0.0.1", Address("10.0.0.1", 7946)),
        ("10.0.0.1:8000", Address("10.0.0.1", 8000)),
    ],
)
def test_flag_parsing_brackets_ipv6(text: str, want: Address) -> None:
    assert parse_host_port(text, "advertise") == want


@pytest.mark.parametrize("text", ["[fd00::5", "[fd00::5]x", "10.0.0.1:http", "10.0.0.1:99999"])
def test_flag_parsing_rejects_malformed(text: str) -> None:
    with pytest.raises(AdvertiseError, match="Invalid advertise address"):
        parse_host_port(text, "advertise")


def test_ipv6_address_prints_bracketed() -> None:
    assert str(Address("fd00::5", 7946)) == "[fd00::5]:7946"
    assert str(Address("10.0.0.1", 7946)) == "10.0.0.1:7946"


def test_proc_route_default_needs_a_gateway() -> None:
    rows = [
        "eth1\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
        "eth2\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0",  # default dev, no via
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0",
        "short",
    ]
    assert default_interface_from_proc_route(rows) == "eth0"
    assert default_interface_from_proc_route(rows[:2]) is None


ETH0 = (
    InterfaceAddress("eth0", "fe80::1", 64),
    InterfaceAddress("eth0", "10.0.0.5", 24),
    InterfaceAddress("eth0", "fd00::5", 64),
)
IFACES = InterfaceTable((*LO, *ETH0), "eth0", ("lo", "eth0", "eth9"))


def test_iface_wildcard_bind_takes_the_first_non_link_local_address() -> None:
    assert interface_bind_host("0.0.0.0", "eth0", interfaces=lambda: IFACES) == "10.0.0.5"


def test_iface_specific_bind_must_be_on_the_interface() -> None:
    assert interface_bind_host("fd00::5", "eth0", interfaces=lambda: IFACES) == "fd00::5"
    with pytest.raises(AdvertiseError, match=r"Interface 'eth0' has no '10\.9\.9\.9' address"):
        interface_bind_host("10.9.9.9", "eth0", interfaces=lambda: IFACES)


@pytest.mark.parametrize(
    ("name", "message"),
    [("eth9", "Interface 'eth9' has no addresses"), ("nope0", "Invalid network interface")],
)
def test_iface_without_addresses_or_missing(name: str, message: str) -> None:
    with pytest.raises(AdvertiseError, match=message):
        interface_bind_host("0.0.0.0", name, interfaces=lambda: IFACES)


def test_iface_with_only_link_local_addresses() -> None:
    only = InterfaceTable((InterfaceAddress("eth0", "fe80::1", 64),), None, ("eth0",))
    with pytest.raises(AdvertiseError, match="Failed to find usable address for interface"):
        interface_bind_host("0.0.0.0", "eth0", interfaces=lambda: only)
