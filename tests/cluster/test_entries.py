"""The cluster's stream entries (server/cluster/entries.py): encoded and parsed back, and the
malformed ones refused with ``cluster.bad_entry``."""

from __future__ import annotations

import pytest

from server.cluster.entries import InputEntry, InputKind, ProgramEntry, ProgramKind
from server.errors import ForumcastError


def test_a_program_fragment_carries_its_source_and_placement() -> None:
    entry = ProgramEntry(
        ProgramKind.FRAGMENT, 7, b"moof", wall=1607216400.25, hls={"n": 3}, source="main-cam",
        offsets={1: 90000, 2: -480}, publisher="a/7",
    )  # fmt: skip
    assert ProgramEntry.parse(entry.fields()) == entry
    slate = ProgramEntry(ProgramKind.FRAGMENT, 7, b"moof", wall=1.5, hls={"n": 4})
    assert b"s" not in slate.fields() and ProgramEntry.parse(slate.fields()) == slate


@pytest.mark.parametrize(
    "fields",
    [
        {b"t": b"frag", b"e": b"1", b"d": b"x", b"w": b"1.0", b"h": b"{}", b"s": b"cam", b"o": b"[1]"},
        {b"t": b"frag", b"e": b"1", b"d": b"x", b"w": b"1.0", b"h": b"{}", b"s": b"cam", b"o": b'{"v": 1}'},
        {b"t": b"frag", b"e": b"1", b"d": b"x", b"w": b"soon", b"h": b"{}"},
        {b"t": b"frag", b"e": b"1", b"d": b"x", b"w": b"1.0", b"h": b"[]"},
        {b"t": b"nope", b"e": b"1"},
        {b"t": b"init", b"e": b"one", b"d": b"x"},
    ],
)
def test_malformed_program_entries_are_refused(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(ForumcastError) as caught:
        ProgramEntry.parse(fields)
    assert caught.value.code == "cluster.bad_entry"


def test_input_entries_round_trip() -> None:
    for entry in (
        InputEntry(InputKind.INIT, "pub-1", b"ftypmoov"),
        InputEntry(InputKind.FRAGMENT, "pub-1", b"moofmdat", keyframe=True),
        InputEntry(InputKind.GONE, "pub-1"),
    ):
        assert InputEntry.parse(entry.fields()) == entry
