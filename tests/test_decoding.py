"""Decoding registers into values: known vectors, byte orders, scaling, bits, strings."""

from __future__ import annotations

import math
import struct

import pytest

from plantwatch.collector.decoding import apply_scale, decode, encode
from plantwatch.collector.errors import DecodeError

# 123.456 as float32 is 0x42F6E979: bytes A=42 B=F6 C=E9 D=79.
FLOAT_VECTORS = {
    "ABCD": [0x42F6, 0xE979],
    "CDAB": [0xE979, 0x42F6],
    "BADC": [0xF642, 0x79E9],
    "DCBA": [0x79E9, 0xF642],
}


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
    assert apply_scale(9346, 0.01, 0) == 93.46
    assert apply_scale(1000, 0.1, -40) == 60.0
    assert apply_scale(12, 10, 5) == 125
    assert isinstance(apply_scale(12, 10, 5), int)
    assert apply_scale(1.5, 2, 0) == 3.0
    assert apply_scale("N", 1, 0) == "N"


def test_nan_and_infinity_are_decode_errors() -> None:
    nan_words = encode(math.nan, "float32")
    with pytest.raises(DecodeError, match="nan"):
        apply_scale(decode(nan_words, "float32"), 1, 0)
    with pytest.raises(DecodeError, match="inf"):
        apply_scale(math.inf, 1, 0)
