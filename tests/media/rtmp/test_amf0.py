"""AMF0 (server/media/rtmp/amf0.py): round trips, the bytes of known values, and bombs."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import RtmpError
from server.media.rtmp import amf0
from server.media.rtmp.amf0 import UNDEFINED, Date, EcmaArray, decode, encode

FUZZ = settings(max_examples=200, deadline=None, database=None)


def code_of(data: bytes, **limits: int) -> str:
    with pytest.raises(RtmpError) as info:
        decode(data, **limits)
    return info.value.code


def test_known_encodings() -> None:
    assert encode(1) == b"\x00" + struct.pack(">d", 1.0)
    assert encode(True, None, UNDEFINED) == b"\x01\x01\x05\x06"
    assert encode("connect") == b"\x02\x00\x07connect"
    assert encode({"app": "live"}) == b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
    assert (
        encode(EcmaArray(a=1))
        == b"\x08\x00\x00\x00\x01\x00\x01a\x00" + struct.pack(">d", 1) + b"\x00\x00\x09"
    )
    assert encode([1, "x"]) == b"\x0a\x00\x00\x00\x02\x00" + struct.pack(">d", 1) + b"\x02\x00\x01x"
    long = "é" * 40000  # 80,000 UTF-8 bytes: a long string
    assert encode(long)[:5] == b"\x0c\x00\x01\x38\x80"


def test_a_real_connect_command_decodes() -> None:
    data = encode(
        "connect",
        1,
        {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False, "capabilities": 15.0, "x": None},
    )
    assert decode(data) == [
        "connect",
        1.0,
        {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False, "capabilities": 15.0, "x": None},
    ]


def test_types_are_kept_apart() -> None:
    ecma, obj = decode(encode(EcmaArray(duration=2.0), {"duration": 2.0}))
    assert type(ecma) is EcmaArray and type(obj) is dict
    assert decode(b"\x0b" + struct.pack(">dh", 1.5e12, 0)) == [Date(1.5e12, 0)]
    assert decode(encode(UNDEFINED)) == [UNDEFINED] and UNDEFINED is amf0._Undefined()
    assert decode(b"\x01\x07") == [True]  # any nonzero byte is true
    assert decode(b"\x03\x00\x00\x02\x00\x01v\x00\x00\x09") == [{"": "v"}]  # an empty key, then the end


def test_ecma_array_count_is_advisory() -> None:
    wrong = b"\x08\x00\x00\x00\x09" + encode({"a": 1.0})[1:]  # says 9, has 1
    assert decode(wrong) == [EcmaArray(a=1.0)]


values = st.recursive(
    st.none() | st.just(UNDEFINED) | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=10), inner, max_size=5)
        | st.dictionaries(st.text(max_size=10), inner, max_size=5).map(EcmaArray)
    ),
    max_leaves=30,
)


@FUZZ
@given(items=st.lists(values, max_size=4))
def test_round_trip(items: list[Any]) -> None:
    assert decode(encode(*items), max_depth=64, max_values=10_000) == items


def test_nan_round_trips() -> None:
    assert math.isnan(decode(encode(math.nan))[0])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x00\x00", "rtmp.bad_amf"),  # a number cut short
        (b"\x02\x00\x05ab", "rtmp.bad_amf"),  # a string cut short
        (b"\x02\x00\x02\xff\xfe", "rtmp.bad_amf"),  # not UTF-8
        (b"\x03\x00\x01a\x05", "rtmp.bad_amf"),  # an object without its end
        (b"\x09", "rtmp.bad_amf"),  # an end marker alone
        (b"\x07\x00\x01", "rtmp.bad_amf"),  # a reference
        (b"\x11\x00", "rtmp.bad_amf"),  # the switch to AMF3
        (b"\x10\x00\x01a\x00\x00\x09", "rtmp.bad_amf"),  # a typed object
        (b"\x0d", "rtmp.bad_amf"),  # unsupported
        (b"\xff", "rtmp.bad_amf"),
    ],
)
def test_malformed_values(data: bytes, code: str) -> None:
    assert code_of(data) == code


def test_deep_nesting_is_refused_without_recursion() -> None:
    bomb = b"\x0a\x00\x00\x00\x01" * 100_000 + b"\x05"
    assert code_of(bomb, max_size=2**22) == "rtmp.amf_too_large"
    objects = b"\x03\x00\x01a" * 50_000 + b"\x05"
    assert code_of(objects, max_size=2**22) == "rtmp.amf_too_large"
    assert decode(b"\x0a\x00\x00\x00\x01" * 15 + b"\x05") == [[[[[[[[[[[[[[[[None]]]]]]]]]]]]]]]]
    assert code_of(b"\x0a\x00\x00\x00\x01" * 17 + b"\x05") == "rtmp.amf_too_large"


def test_huge_strings_are_refused_before_reading() -> None:
    assert code_of(b"\x0c\xff\xff\xff\xff") == "rtmp.amf_too_large"
    assert code_of(b"\x0c\x00\x01\x00\x01" + b"a" * 65537) == "rtmp.amf_too_large"
    assert decode(b"\x0c\x00\x01\x00\x00" + b"a" * 65536) == ["a" * 65536]


def test_huge_counts_are_refused_before_allocating() -> None:
    assert code_of(b"\x0a\xff\xff\xff\xff\x05") == "rtmp.amf_too_large"
    many_nulls = b"\x0a\x00\x01\x00\x00" + b"\x05" * 65536
    assert code_of(many_nulls) == "rtmp.amf_too_large"  # over max_values
    assert len(decode(many_nulls, max_values=70_000)[0]) == 65536
    wide = encode({f"k{i}": None for i in range(3000)})
    assert code_of(wide) == "rtmp.amf_too_large"  # keys count too


def test_total_size_is_bounded() -> None:
    assert code_of(encode("x" * 2000), max_size=1000) == "rtmp.amf_too_large"


@FUZZ
@given(data=st.binary(max_size=300))
def test_garbage_raises_only_our_errors(data: bytes) -> None:
    with contextlib.suppress(RtmpError):  # anything else escapes and fails
        decode(data)


@FUZZ
@given(items=st.lists(values, min_size=1, max_size=3), at=st.integers(0), byte=st.integers(0, 255))
def test_mutations_raise_only_our_errors(items: list[Any], at: int, byte: int) -> None:
    data = bytearray(encode(*items))
    data[at % len(data)] = byte
    with contextlib.suppress(RtmpError):  # anything else escapes and fails
        decode(bytes(data))
