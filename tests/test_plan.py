"""Request coalescing: fewest requests within 125 registers / 2000 bits and the max_insert gap."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.modbus_polling import minimum_requests
from plantwatch.collector.modbus.plan import plan_requests
from plantwatch.config.device_map import Register


def reg(name: str, address: int, type_: str = "uint16", table: str = "holding", **kw: object) -> Register:
    return Register(name=name, address=address, type=type_, table=table, **kw)  # type: ignore[arg-type]


def test_contiguous_registers_become_one_request() -> None:
    regs = [reg("a", 0, "float32"), reg("b", 2, "uint32"), reg("c", 4), reg("d", 5, "float64")]
    (request,) = plan_requests(regs)
    assert (request.table, request.address, request.count, request.function) == ("holding", 0, 9, 3)
    assert [r.name for r in request.registers] == ["a", "b", "c", "d"]


def test_gap_fill_is_bounded_by_max_insert() -> None:
    regs = [reg("a", 0), reg("b", 11), reg("c", 40)]
    assert [(r.address, r.count) for r in plan_requests(regs, max_insert=10)] == [(0, 12), (40, 1)]
    assert [(r.address, r.count) for r in plan_requests(regs, max_insert=0)] == [(0, 1), (11, 1), (40, 1)]
    assert [(r.address, r.count) for r in plan_requests(regs, max_insert=28)] == [(0, 41)]


def test_register_requests_stop_at_125() -> None:
    regs = [reg(f"r{i}", i * 2, "float32") for i in range(100)]  # 200 contiguous registers
    assert [(r.address, r.count) for r in plan_requests(regs)] == [(0, 124), (124, 76)]


def test_bit_requests_stop_at_2000_and_tables_never_mix() -> None:
    regs = [reg(f"c{i}", i, "bool", "coil") for i in range(0, 2500, 5)]
    regs += [reg("h", 0), reg("i", 0, table="input"), reg("d", 3, "bool", "discrete")]
    plan = plan_requests(regs, max_insert=10)
    assert [(r.table, r.address, r.count) for r in plan] == [
        ("holding", 0, 1),
        ("input", 0, 1),
        ("coil", 0, 1996),
        ("coil", 2000, 496),
        ("discrete", 3, 1),
    ]


def test_bits_sharing_one_register_are_read_once() -> None:
    regs = [reg("b0", 20, "bool", bit=0), reg("b3", 20, "bool", bit=3), reg("x", 21)]
    (request,) = plan_requests(regs)
    assert (request.address, request.count, len(request.registers)) == (20, 2, 3)


@st.composite
def register_sets(draw: st.DrawFn) -> list[Register]:
    count = draw(st.integers(1, 25))
    regs, used = [], set()
    for i in range(count):
        table = draw(st.sampled_from(["holding", "input", "coil"]))
        type_ = "bool" if table == "coil" else draw(st.sampled_from(["uint16", "float32", "float64"]))
        width = {"bool": 1, "uint16": 1, "float32": 2, "float64": 4}[type_]
        address = draw(st.integers(0, 3000 if table == "coil" else 600))
        cells = {(table, a) for a in range(address, address + width)}
        if cells & used:
            continue
        used |= cells
        regs.append(reg(f"r{i}", address, type_, table))
    return regs


@given(regs=register_sets(), max_insert=st.integers(0, 40))
@settings(max_examples=300, deadline=None)
def test_plan_is_minimal_and_covers_every_register(regs: list[Register], max_insert: int) -> None:
    plan = plan_requests(regs, max_insert)
    assert len(plan) == minimum_requests(regs, max_insert)
    planned = [r.name for request in plan for r in request.registers]
    assert sorted(planned) == sorted(r.name for r in regs)
    for request in plan:
        assert request.count <= (2000 if request.table == "coil" else 125)
        for r in request.registers:
            assert request.address <= r.address and r.end <= request.address + request.count
