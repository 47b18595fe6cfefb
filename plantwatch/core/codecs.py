"""Turn Modbus registers into typed, scaled values and back (the simulator uses `encode`)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from math import isfinite
from operator import itemgetter
from typing import Any, Literal, NamedTuple, cast

from plantwatch.core.errors import DecodeError

ValueType = Literal[
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "bool",
    "string",
]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
Value = int | float | bool | str

# struct format and width in 16-bit registers for each fixed-width type.
STRUCT_FORMATS: dict[str, tuple[str, int]] = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float32": ("f", 2),
    "float64": ("d", 4),
}
INTEGER_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})
NUMERIC_TYPES = INTEGER_TYPES | {"float32", "float64"}


def width(value_type: str, length: int | None = None) -> int:
    """Registers (or bits, for coil tables) one value of `value_type` occupies."""
    if value_type == "string":
        return length or 0
    if value_type == "bool":
        return 1
    return STRUCT_FORMATS[value_type][1]


def _to_canonical(data: bytes, byte_order: ByteOrder) -> bytes:
    """Reorder bytes as they came off the wire into most-significant-first order.

    Wire bytes are the registers' big-endian bytes in register order. ABCD needs nothing;
    CDAB reverses the order of the 16-bit words; BADC swaps the two bytes of each word;
    DCBA does both (a fully little-endian value). The same permutation is its own inverse.
    """
    if byte_order in ("BADC", "DCBA"):
        data = b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))
    if byte_order in ("CDAB", "DCBA"):
        data = b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))
    return data


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    """Big-endian bytes of 16-bit registers, in register order."""
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(data: bytes) -> list[int]:
    """16-bit registers from big-endian bytes."""
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def decode(
    registers: Sequence[int],
    value_type: ValueType,
    byte_order: ByteOrder = "ABCD",
    *,
    bit: int | None = None,
) -> Value:
    """Decode the raw (unscaled) value held by `registers`."""
    if value_type == "bool":
        if bit is None:
            return registers[0] != 0
        return bool((registers[0] >> bit) & 1)
    data = _to_canonical(registers_to_bytes(registers), byte_order)
    if value_type == "string":
        text = data.rstrip(b"\x00 ")
        try:
            return text.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not ASCII: {data!r}") from exc
    fmt, _ = STRUCT_FORMATS[value_type]
    (value,) = struct.unpack(">" + fmt, data)
    return value


def encode(
    value: Value,
    value_type: ValueType,
    byte_order: ByteOrder = "ABCD",
    *,
    length: int | None = None,
    bit: int | None = None,
    current: int = 0,
) -> list[int]:
    """Encode a raw value into registers; for a bool in a register, `current` keeps other bits."""
    if value_type == "bool":
        if bit is None:
            return [1 if value else 0]
        mask = 1 << bit
        return [(current | mask) if value else (current & ~mask)]
    if value_type == "string":
        size = 2 * (length or 0)
        data = str(value).encode("ascii")[:size].ljust(size, b"\x00")
    else:
        fmt, _ = STRUCT_FORMATS[value_type]
        data = struct.pack(">" + fmt, value)
    return bytes_to_registers(_to_canonical(data, byte_order))


class ValueSpec(NamedTuple):
    """Where one value sits in a span of registers and how to decode it."""

    at: int  # first register of the value, counted from the start of the span
    value_type: ValueType
    byte_order: ByteOrder = "ABCD"
    bit: int | None = None  # a bool inside a register
    scale: float = 1.0
    offset: float = 0.0
    counter_bits: int | None = None  # a counter is masked to this width before scaling
    length: int | None = None  # a string's registers


# How one value is read off the packed words: (words packed little-endian, struct byte order,
# byte offset, struct code). Values with equal layouts share one read.
Layout = tuple[bool, str, int, str]
Finisher = Callable[[Any], Value]
Getter = Callable[[Sequence[Any]], tuple[Any, ...]]


class SpanDecoder:
    """Decodes every value of one span of registers (one read response) at once, with the work
    of planning done when it is built.

    The words are packed into bytes once per poll for each word byte order the values need
    (big-endian, byte-swapped, or both). Values sharing a byte layout are read by one precompiled struct, in
    address order; a value overlapping another (two bits of one status word) shares its read or
    goes into the next struct. Then counters are masked, values scaled, floats and strings
    checked: engineering value = raw x scale + offset, after masking a counter to `counter_bits`.
    Integers stay integers when scale and offset are whole; an integer register scaled by 0.01 is
    rounded to two decimals, so float noise (93.46000000000001) never reaches a sink. `decode()`
    above is the plain reference this must agree with (tests/test_decoding.py).
    """

    def __init__(self, count: int, specs: Sequence[ValueSpec]) -> None:
        if not specs:
            raise ValueError("a span decoder needs at least one value")
        layouts = [_layout(spec) for spec in specs]
        groups: list[tuple[bool, str, list[tuple[int, str]]]] = []  # (little, order, fields)
        reach: list[int] = []  # the first byte after each group's last field
        for little, order, start, code in sorted(set(layouts), key=lambda layout: (layout[2], layout)):
            fits = (n for n, group in enumerate(groups) if group[:2] == (little, order) and reach[n] <= start)
            n = next(fits, len(groups))
            if n == len(groups):
                groups.append((little, order, []))
                reach.append(0)
            groups[n][2].append((start, code))
            reach[n] = start + struct.calcsize(code)
        raw_order: list[Layout] = []
        self._reads: list[tuple[bool, Callable[[bytes], tuple[Any, ...]]]] = []
        for little, order, fields in groups:
            fmt, position = order, 0
            for start, code in fields:
                fmt += f"{start - position}x{code}" if start > position else code
                position = start + struct.calcsize(code)
                raw_order.append((little, order, start, code))
            self._reads.append((little, struct.Struct(fmt).unpack_from))
        self._pack_big = struct.Struct(f">{count}H").pack
        self._pack_little = struct.Struct(f"<{count}H").pack
        self._big = any(not little for little, _ in self._reads)
        self._little = any(little for little, _ in self._reads)
        picks = [raw_order.index(layout) for layout in layouts]
        self._pick: Getter | None = None
        if picks != list(range(len(raw_order))):  # values not in read order, or a read shared
            self._pick = items_at(picks)
        self._finishers = [(n, finish) for n, spec in enumerate(specs) if (finish := _finisher(spec))]
        # Unscaled floats need only a finiteness check, done on their sum (NaN and infinity carry).
        self._plain_floats = [n for n, spec in enumerate(specs) if _plain_float(spec)]
        self._plain_float_values = items_at(self._plain_floats) if self._plain_floats else None

    def decode(self, words: Sequence[int]) -> tuple[list[Value | None], dict[int, DecodeError]]:
        """Every value in the order of the specs (None where it cannot be decoded), and the
        error of each value that cannot be, by its position."""
        big = self._pack_big(*words) if self._big else b""
        little = self._pack_little(*words) if self._little else b""
        raw: tuple[Any, ...] = ()
        for is_little, read in self._reads:
            raw += read(little if is_little else big)
        values: list[Value | None] = list(raw if self._pick is None else self._pick(raw))
        errors: dict[int, DecodeError] = {}
        for n, finish in self._finishers:
            try:
                values[n] = finish(values[n])
            except DecodeError as exc:
                values[n], errors[n] = None, exc
        if self._plain_float_values is not None and not isfinite(sum(self._plain_float_values(values))):
            for n in self._plain_floats:
                if not isfinite(raw_float := cast(float, values[n])):
                    values[n], errors[n] = None, DecodeError(f"value is {raw_float}")
        return values, errors


def items_at(positions: Sequence[int]) -> Getter:
    """The items at `positions`, always as a tuple (itemgetter of one position returns the item)."""
    if len(positions) == 1:
        position = positions[0]
        return lambda items: (items[position],)
    return itemgetter(*positions)


def _plain_float(spec: ValueSpec) -> bool:
    return spec.value_type in ("float32", "float64") and spec.scale == 1 and spec.offset == 0


def _layout(spec: ValueSpec) -> Layout:
    """How `spec` is read from the packed words.

    The words are packed with each word's byte order and read back with the value's: reversing
    the words (CDAB, DCBA) is reading the bytes as little-endian, so nothing is reordered. A
    string's bytes are read as they are packed; its finisher reverses them (see `_string_finisher`).
    """
    swap_bytes = spec.byte_order in ("BADC", "DCBA")
    reverse_words = spec.byte_order in ("CDAB", "DCBA")
    start = 2 * spec.at
    if spec.value_type == "bool":
        return False, ">", start, "H"
    code = f"{2 * (spec.length or 0)}s" if spec.value_type == "string" else STRUCT_FORMATS[spec.value_type][0]
    return swap_bytes != reverse_words, "<" if reverse_words else ">", start, code


def _finisher(spec: ValueSpec) -> Finisher | None:
    """What turns the raw value read for `spec` into its value; None when the raw value is it."""
    if spec.value_type == "bool":
        return _bool_finisher(spec.bit)
    if spec.value_type == "string":
        return _string_finisher(spec.byte_order in ("CDAB", "DCBA"))
    if _plain_float(spec):
        return None  # checked with the others, see SpanDecoder.decode
    if spec.value_type in ("float32", "float64"):
        return _float_finisher(spec.scale, spec.offset)
    return _integer_finisher(spec.scale, spec.offset, spec.counter_bits)


def _bool_finisher(bit: int | None) -> Finisher:
    if bit is None:
        return lambda raw: raw != 0
    return lambda raw: bool((raw >> bit) & 1)


def _string_finisher(reverse_words: bool) -> Finisher:
    # Words to reverse were packed with their bytes the other way round (`_layout`), so reversing
    # every byte puts both the words and the bytes of each word in order.
    def finish(data: bytes) -> str:
        if reverse_words:
            data = data[::-1]
        try:
            return data.rstrip(b"\x00 ").decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not ASCII: {data!r}") from exc

    return finish


def _float_finisher(scale: float, offset: float) -> Finisher:
    def finish(raw: float) -> float:
        if not isfinite(raw):
            raise DecodeError(f"value is {raw}")
        return raw * scale + offset

    return finish


def _integer_finisher(scale: float, offset: float, counter_bits: int | None) -> Finisher | None:
    mask = (1 << counter_bits) - 1 if counter_bits else None
    if scale == 1 and offset == 0:
        return None if mask is None else lambda raw: raw & mask
    if float(scale).is_integer() and float(offset).is_integer():
        factor, shift = int(scale), int(offset)
        if mask is None:
            return lambda raw: raw * factor + shift
        return lambda raw: (raw & mask) * factor + shift
    # A decimal scale as integers: raw x 0.01 + 1.5 = (raw x 2 + 300) / 200 ... with 10**digits:
    # one correctly rounded division gives the double nearest the exact decimal result.
    digits = _decimals(scale) + _decimals(offset)
    denominator = 10**digits
    scale_int, offset_int = round(scale * denominator), round(offset * denominator)
    full = -1 if mask is None else mask  # -1 masks nothing
    if scale_int == scale * denominator and offset_int == offset * denominator:
        return lambda raw: ((raw & full) * scale_int + offset_int) / denominator
    return lambda raw: round((raw & full) * scale + offset, digits)


def _decimals(number: float) -> int:
    """Decimal places in the shortest repr of `number` (0.01 -> 2, 2.5e-05 -> 6)."""
    text = repr(float(number))
    if "e" in text:
        mantissa, exponent = text.split("e")
        places = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
        return max(0, places - int(exponent))
    return len(text.split(".")[1].rstrip("0"))
