"""Decoding registers into values: known vectors, byte orders, scaling, bits, strings."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from plantwatch.core.codecs import (
    INTEGER_TYPES,
    STRUCT_FORMATS,
    SpanDecoder,
    Value,
    ValueSpec,
    decode,
    encode,
    width,
)
from plantwatch.core.errors import DecodeError

# 123.456 as float32 is 0x42F6E979: bytes A=42 B=F6 C=E9 D=79.
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]
FLOAT_VECTORS = {
    "ABCD": [0x42F6, 0xE979],
    "CDAB": [0xE979, 0x42F6],
    "BADC": [0xF642, 0x79E9],
    "DCBA": [0x79E9, 0xF642],
}


def compile_decoder(
    value_type: str, byte_order: str = "ABCD", **options: Any
) -> Callable[[list[int]], Value]:
    """One value's decoder: a SpanDecoder of that value alone, raising its error."""

    def decoder(words: list[int]) -> Value:
        length = len(words) if value_type == "string" else None
        spec = ValueSpec(0, value_type, byte_order, length=length, **options)
        values, errors = SpanDecoder(len(words), [spec]).decode(words)
        if errors:
            raise errors[0]
        assert values[0] is not None
        return values[0]

    return decoder


@pytest.mark.parametrize(("order", "words"), FLOAT_VECTORS.items())
def test_float32_vectors_in_every_byte_order(order: str, words: list[int]) -> None:
    assert decode(words, "float32", order) == pytest.approx(123.456, rel=1e-7)
    assert encode(struct.unpack(">f", bytes.fromhex("42F6E979"))[0], "float32", order) == words


def test_int16_byte_swap_follows_the_four_letter_order() -> None:
    # -2 is 0xFFFE; BA order swaps the two bytes (BADC/DCBA), AB keeps them (ABCD/CDAB).
    assert decode([0xFFFE], "int16", "ABCD") == -2
    assert decode([0xFFFE], "int16", "CDAB") == -2
    assert decode([0xFEFF], "int16", "BADC") == -2
    assert decode([0xFEFF], "int16", "DCBA") == -2


def test_uint64_word_swap_reverses_all_four_words() -> None:
    value = 0x0102030405060708
    assert decode([0x0102, 0x0304, 0x0506, 0x0708], "uint64", "ABCD") == value
    assert decode([0x0708, 0x0506, 0x0304, 0x0102], "uint64", "CDAB") == value
    assert decode([0x0201, 0x0403, 0x0605, 0x0807], "uint64", "BADC") == value
    assert decode([0x0807, 0x0605, 0x0403, 0x0201], "uint64", "DCBA") == value


def test_signed_and_unsigned_32_bit_differ_on_the_sign_bit() -> None:
    assert decode([0xFFFF, 0xFFFF], "uint32") == 4_294_967_295
    assert decode([0xFFFF, 0xFFFF], "int32") == -1


def test_bool_bits_inside_a_register() -> None:
    word = 0b1000_0000_0000_1001
    assert decode([word], "bool", bit=0) is True
    assert decode([word], "bool", bit=1) is False
    assert decode([word], "bool", bit=3) is True
    assert decode([word], "bool", bit=15) is True
    assert encode(True, "bool", bit=2, current=word) == [word | 0b100]
    assert encode(False, "bool", bit=0, current=word) == [word & ~1]


def test_strings_strip_padding_and_swap_bytes() -> None:
    assert decode([0x5132, 0x3335, 0x0000], "string") == "Q235"
    assert decode([0x3251, 0x3533], "string", "BADC") == "Q235"
    assert encode("Q235", "string", length=3) == [0x5132, 0x3335, 0x0000]


def test_non_ascii_string_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not ASCII"):
        decode([0xE4B8, 0xAD00], "string")


def test_scale_and_offset() -> None:
    assert compile_decoder("uint16", scale=0.01)([9346]) == 93.46
    assert compile_decoder("uint16", scale=0.1, offset=-40)([1000]) == 60.0
    assert compile_decoder("int16", scale=10, offset=5)([12]) == 125
    assert isinstance(compile_decoder("int16", scale=10, offset=5)([12]), int)
    assert compile_decoder("float32", scale=2)(encode(1.5, "float32")) == 3.0
    assert compile_decoder("string")([0x4E00]) == "N"
    assert compile_decoder("bool", bit=1)([0b10]) is True


def test_counters_are_masked_to_their_width_before_scaling() -> None:
    assert compile_decoder("uint32", counter_bits=16)([0x0001, 0x0005]) == 5
    assert compile_decoder("uint32", counter_bits=16, scale=0.5)([0x0001, 0x0005]) == 2.5
    assert compile_decoder("uint32")([0x0001, 0x0005]) == 65541


@given(words=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4),
       value_type=st.sampled_from(["int16", "uint16", "int32", "uint32", "int64", "uint64"]),
       order=st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))  # fmt: skip
def test_compiled_decoder_agrees_with_decode(words: list[int], value_type: str, order: str) -> None:
    width = {"16": 1, "32": 2, "64": 4}[value_type[-2:]]
    assert compile_decoder(value_type, order)(words[:width]) == decode(words[:width], value_type, order)


@given(value=st.floats(allow_nan=False, allow_infinity=False, width=32),
       value_type=st.sampled_from(["float32", "float64"]),
       order=st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"]))  # fmt: skip
def test_compiled_decoder_reads_back_every_float_in_every_byte_order(
    value: float, value_type: str, order: str
) -> None:
    words = encode(value, value_type, order)
    assert compile_decoder(value_type, order)(words) == value


@given(raw=st.integers(0, 65535), scale=st.sampled_from([0.1, 0.01, 0.001, 0.25, 1e-05, 2.5]),
       offset=st.sampled_from([0.0, -40.0, 273.15, 0.5]))  # fmt: skip
def test_decimal_scaling_is_the_double_nearest_the_exact_decimal(
    raw: int, scale: float, offset: float
) -> None:
    from decimal import Decimal

    exact = Decimal(raw) * Decimal(repr(scale)) + Decimal(repr(offset))
    assert compile_decoder("uint16", scale=scale, offset=offset)([raw]) == float(exact)


@given(
    text=st.text(alphabet="ABCXYZ0129 -", max_size=8), order=st.sampled_from(["ABCD", "CDAB", "BADC", "DCBA"])
)
def test_compiled_string_decoder_agrees_with_decode(text: str, order: str) -> None:
    words = encode(text, "string", order, length=4)
    assert compile_decoder("string", order)(words) == decode(words, "string", order) == text.rstrip(" ")


def test_nan_and_infinity_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match="nan"):
        compile_decoder("float32")(encode(math.nan, "float32"))
    with pytest.raises(DecodeError, match="inf"):
        compile_decoder("float64", "DCBA")(encode(-math.inf, "float64", "DCBA"))


@st.composite
def spans(draw: st.DrawFn) -> tuple[list[ValueSpec], list[int]]:
    """A response span and values laid anywhere in it: gaps, overlaps, bits of one word, any order."""
    count = draw(st.integers(1, 20))
    specs = []
    for _ in range(draw(st.integers(1, 8))):
        value_type = draw(st.sampled_from([*STRUCT_FORMATS, "bool", "string"]))
        length = draw(st.integers(1, 3)) if value_type == "string" else None
        size = width(value_type, length)
        if size > count:
            continue
        bit = draw(st.none() | st.integers(0, 15)) if value_type == "bool" else None
        at = draw(st.integers(0, count - size))
        specs.append(ValueSpec(at, value_type, draw(st.sampled_from(ORDERS)), bit=bit, length=length))
    assume(specs)
    ascii_words = st.integers(0x20, 0x7E).map(lambda low: low << 8 | draw(st.integers(0x20, 0x7E)))
    words = draw(st.lists(st.integers(0, 0xFFFF) | ascii_words, min_size=count, max_size=count))
    return specs, words


@st.composite
def scaled_spans(draw: st.DrawFn) -> tuple[list[ValueSpec], list[int]]:
    """Spans whose numbers are scaled, offset and (integers) masked as counters."""
    specs, words = draw(spans())
    scales = st.sampled_from([1.0, 2.0, 0.1, 0.01, 0.001, 2.5e-05, -0.5, 1 / 3])
    offsets = st.sampled_from([0.0, 5.0, -40.0, 273.15, 0.5])
    scaled = []
    for spec in specs:
        if spec.value_type in STRUCT_FORMATS:
            bits = 16 * width(spec.value_type)
            counter = draw(st.none() | st.integers(1, bits)) if spec.value_type in INTEGER_TYPES else None
            spec = spec._replace(scale=draw(scales), offset=draw(offsets), counter_bits=counter)
        scaled.append(spec)
    return scaled, words


@given(scaled_spans())
def test_scaling_in_a_span_is_scaling_the_value_alone(span: tuple[list[ValueSpec], list[int]]) -> None:
    specs, words = span
    values, errors = SpanDecoder(len(words), specs).decode(words)
    for n, spec in enumerate(specs):
        size = width(spec.value_type, spec.length)
        alone, alone_errors = SpanDecoder(size, [spec._replace(at=0)]).decode(words[spec.at : spec.at + size])
        assert str(errors.get(n)) == str(alone_errors.get(0))
        assert values[n] == alone[0] and type(values[n]) is type(alone[0])


@given(spans())
def test_a_span_decodes_every_value_as_decoding_it_alone_would(
    span: tuple[list[ValueSpec], list[int]],
) -> None:
    specs, words = span
    values, errors = SpanDecoder(len(words), specs).decode(words)
    assert len(values) == len(specs)
    for n, spec in enumerate(specs):
        own = words[spec.at : spec.at + width(spec.value_type, spec.length)]
        try:
            expected = decode(own, spec.value_type, spec.byte_order, bit=spec.bit)
        except DecodeError as exc:
            assert values[n] is None and str(errors[n]) == str(exc)
            continue
        if isinstance(expected, float) and not math.isfinite(expected):
            assert values[n] is None and str(errors[n]) == f"value is {expected}"
            continue
        assert n not in errors
        assert values[n] == expected and type(values[n]) is type(expected)


def test_one_bad_value_in_a_span_leaves_the_others_good() -> None:
    specs = [
        ValueSpec(0, "float32"),
        ValueSpec(2, "float32", "DCBA"),
        ValueSpec(4, "string", length=1),
        ValueSpec(5, "uint16", scale=0.1),
        ValueSpec(5, "bool", bit=0),
    ]
    words = [*encode(1.5, "float32"), *encode(math.inf, "float32", "DCBA"), 0xE400, 1001]
    values, errors = SpanDecoder(6, specs).decode(words)
    assert values == [1.5, None, None, 100.1, True]
    assert sorted(errors) == [1, 2]
    assert str(errors[1]) == "value is inf"
    assert "not ASCII" in str(errors[2])


def test_finite_floats_whose_sum_overflows_are_good() -> None:
    words = encode(1.5e308, "float64") + encode(1.7e308, "float64", "CDAB")
    values, errors = SpanDecoder(8, [ValueSpec(0, "float64"), ValueSpec(4, "float64", "CDAB")]).decode(words)
    assert (values, errors) == ([1.5e308, 1.7e308], {})
