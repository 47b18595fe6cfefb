"""Every type × byte order, scale/offset, bits and strings, read from a live pymodbus server."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.collector.modbus.poller import ModbusDevicePoller
from plantwatch.collector.modbus.transport import ModbusBus
from plantwatch.config.device_map import parse_device_map
from plantwatch.config.plant import DeviceConfig
from plantwatch.core.reading import PollResult
from tests.conftest import BankServer

# Independent reference: where each canonical (most-significant-first) byte goes on the wire.
WIRE_POSITIONS = {
    ("ABCD", 2): [0, 1],
    ("CDAB", 2): [0, 1],
    ("BADC", 2): [1, 0],
    ("DCBA", 2): [1, 0],
    ("ABCD", 4): [0, 1, 2, 3],
    ("CDAB", 4): [2, 3, 0, 1],
    ("BADC", 4): [1, 0, 3, 2],
    ("DCBA", 4): [3, 2, 1, 0],
    ("ABCD", 8): [0, 1, 2, 3, 4, 5, 6, 7],
    ("CDAB", 8): [6, 7, 4, 5, 2, 3, 0, 1],
    ("BADC", 8): [1, 0, 3, 2, 5, 4, 7, 6],
    ("DCBA", 8): [7, 6, 5, 4, 3, 2, 1, 0],
}
FORMATS = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def reference_words(value: float, value_type: str, order: str) -> list[int]:
    canonical = struct.pack(">" + FORMATS[value_type], value)
    wire = bytes(canonical[i] for i in WIRE_POSITIONS[(order, len(canonical))])
    return [int.from_bytes(wire[i : i + 2], "big") for i in range(0, len(wire), 2)]


def values_for(value_type: str) -> st.SearchStrategy:
    if value_type == "float32":
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    if value_type == "float64":
        return st.floats(allow_nan=False, allow_infinity=False)
    bits = {"16": 16, "32": 32, "64": 64}[value_type[-2:]]
    if value_type.startswith("u"):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def one_register_map(**register: object) -> object:
    return parse_device_map(
        {
            "model": "t",
            "description": "test",
            "sector": "emissions",
            "protocol": "modbus",
            "registers": [{"name": "v", **register}],
        },
        "test.yaml",
    )


def poll(server: BankServer, device_map: object, unit: int = 1, timeout: str = "1s") -> PollResult:
    device = DeviceConfig(id="dev", map="t", url=server.url, unit=unit, timeout=timeout)

    async def run() -> PollResult:
        bus = ModbusBus(device.endpoint, timeout=device.timeout)
        try:
            return await ModbusDevicePoller(device, device_map, bus).poll()  # type: ignore[arg-type]
        finally:
            bus.close()

    return server.loop_thread.run(run())


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("value_type", list(FORMATS))
def test_every_type_and_byte_order_round_trips(bank: BankServer, value_type: str, order: str) -> None:
    device_map = one_register_map(table="holding", address=100, type=value_type, byte_order=order)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=values_for(value_type))
    def check(value: float) -> None:
        bank.banks[1].set_registers("holding", 100, reference_words(value, value_type, order))
        (reading,) = poll(bank, device_map).readings
        assert reading.quality == "good"
        if value_type == "float32":
            assert reading.value == struct.unpack(">f", struct.pack(">f", value))[0]
        else:
            assert reading.value == value

    check()


@given(
    raw=st.integers(0, 65535),
    scale=st.sampled_from([0.1, 0.01, 0.001, 2.0, 10.0]),
    offset=st.sampled_from([0.0, -40.0, 273.15]),
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_scale_and_offset_on_the_wire(bank_server: BankServer, raw: int, scale: float, offset: float) -> None:
    device_map = one_register_map(table="input", address=7, type="uint16", scale=scale, offset=offset)
    bank_server.banks[1].set_registers("input", 7, [raw])
    (reading,) = poll(bank_server, device_map).readings
    assert math.isclose(reading.value, raw * scale + offset, rel_tol=1e-12, abs_tol=1e-9)


def test_bits_in_registers_coils_and_discrete_inputs(bank: BankServer) -> None:
    device_map = parse_device_map(
        {
            "model": "t",
            "description": "bits",
            "sector": "steel",
            "protocol": "modbus",
            "registers": [
                {"name": "b0", "address": 20, "type": "bool", "bit": 0},
                {"name": "b3", "address": 20, "type": "bool", "bit": 3},
                {"name": "b15", "address": 20, "type": "bool", "bit": 15},
                {"name": "coil_5", "table": "coil", "address": 5, "type": "bool"},
                {"name": "coil_6", "table": "coil", "address": 6, "type": "bool"},
                {"name": "di_17", "table": "discrete", "address": 17, "type": "bool"},
            ],
        },
        "bits.yaml",
    )
    bank.banks[1].set_registers("holding", 20, [0b1000_0000_0000_1000])
    bank.banks[1].set_bit("coil", 5, True)
    bank.banks[1].set_bit("discrete", 17, True)
    values = {r.field: r.value for r in poll(bank, device_map).readings}
    assert values == {"b0": False, "b3": True, "b15": True, "coil_5": True, "coil_6": False, "di_17": True}


def test_strings_on_the_wire(bank: BankServer) -> None:
    device_map = one_register_map(address=40, type="string", length=4, byte_order="BADC")
    bank.banks[1].set_registers("holding", 40, [0x3251, 0x3533, 0x0000, 0x0000])
    (reading,) = poll(bank, device_map).readings
    assert (reading.value, reading.quality) == ("Q235", "good")


def test_undecodable_string_is_bad_with_a_reason(bank: BankServer) -> None:
    device_map = one_register_map(address=40, type="string", length=2)
    bank.banks[1].set_registers("holding", 40, [0xE4B8, 0xAD00])
    (reading,) = poll(bank, device_map).readings
    assert reading.value is None
    assert reading.quality.startswith("decode error: string is not ASCII")
