"""Turn Modbus registers into typed, scaled values and back (the simulator uses `encode`)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Literal

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


def compile_decoder(
    value_type: ValueType,
    byte_order: ByteOrder = "ABCD",
    *,
    bit: int | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
    counter_bits: int | None = None,
) -> Callable[[Sequence[int]], Value]:
    """A function turning one register's words into its scaled value, with the work done once.

    Engineering value = raw × scale + offset, after masking a counter to `counter_bits`.
    Integers stay integers when scale and offset are whole; an integer register scaled by 0.01
    is rounded to two decimals, so float noise (93.46000000000001) never reaches a sink.
    """
    if value_type == "bool":
        return lambda words: decode(words, value_type, byte_order, bit=bit)
    swap_bytes = byte_order in ("BADC", "DCBA")
    reverse_words = byte_order in ("CDAB", "DCBA")
    if value_type == "string":
        return _string_decoder(swap_bytes, reverse_words)
    fmt, count = STRUCT_FORMATS[value_type]
    # The words packed with each word's byte order and read back with the value's: reversing
    # the words (CDAB, DCBA) is reading the bytes as little-endian, so nothing is reordered.
    pack = struct.Struct(("<" if swap_bytes != reverse_words else ">") + f"{count}H").pack
    unpack = struct.Struct(("<" if reverse_words else ">") + fmt).unpack
    single = count == 1  # a 16-bit register: arithmetic, not struct
    signed16 = value_type == "int16"
    mask = (1 << counter_bits) - 1 if counter_bits else None
    plain = scale == 1 and offset == 0
    whole = float(scale).is_integer() and float(offset).is_integer()
    # A decimal scale as integers: raw × 0.01 + 1.5 = (raw × 2 + 300) / 200 ... with 10**digits:
    # one correctly rounded division gives the double nearest the exact decimal result.
    digits = _decimals(scale) + _decimals(offset)
    denominator = 10**digits
    scale_int, offset_int = round(scale * denominator), round(offset * denominator)
    decimal = scale_int == scale * denominator and offset_int == offset * denominator

    def decoder(words: Sequence[int]) -> Value:
        if single:
            raw = words[0]
            if swap_bytes:
                raw = ((raw & 0xFF) << 8) | (raw >> 8)
            if signed16 and raw & 0x8000:
                raw -= 0x10000
        else:
            (raw,) = unpack(pack(*words))
            if isinstance(raw, float):
                if not math.isfinite(raw):
                    raise DecodeError(f"value is {raw}")
                return raw if plain else raw * scale + offset
        if mask is not None:
            raw &= mask
        if plain:
            return raw
        if whole:
            return raw * int(scale) + int(offset)
        if decimal:
            return (raw * scale_int + offset_int) / denominator
        return round(raw * scale + offset, digits)

    return decoder


def _string_decoder(swap_bytes: bool, reverse_words: bool) -> Callable[[Sequence[int]], Value]:
    def decoder(words: Sequence[int]) -> Value:
        data = struct.pack(
            f"{'<' if swap_bytes else '>'}{len(words)}H", *(words[::-1] if reverse_words else words)
        )
        text = data.rstrip(b"\x00 ")
        try:
            return text.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not ASCII: {data!r}") from exc

    return decoder


def _decimals(number: float) -> int:
    """Decimal places in the shortest repr of `number` (0.01 -> 2, 2.5e-05 -> 6)."""
    text = repr(float(number))
    if "e" in text:
        mantissa, exponent = text.split("e")
        places = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
        return max(0, places - int(exponent))
    return len(text.split(".")[1].rstrip("0"))
