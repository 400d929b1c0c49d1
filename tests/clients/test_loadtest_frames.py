"""The load-test viewer's byte reading: a real fragment's ``prft`` and ``mfhd`` marks."""

from __future__ import annotations

import pytest

from clients.loadtest_frames import PREFIX, fragment_marks, ntp_to_unix
from clients.source import split
from server.encoding.testpattern import PatternSettings, encode_clip

SETTINGS = PatternSettings(label="LOAD", width=320, height=180, gop=25, fragment_ms=200, preset="ultrafast")


def test_fragment_marks_read_prft_and_sequence_number() -> None:
    clip = split(encode_clip("LOAD", 1.2, SETTINGS, start=1_700_000_000.0))
    assert len(clip.fragments) >= 5
    for fragment in clip.fragments:
        ntp, sequence = fragment_marks(fragment.data[:PREFIX])
        assert sequence == fragment.sequence_number
        assert fragment.producer_time is not None
        assert ntp_to_unix(ntp) == pytest.approx(fragment.producer_time, abs=1e-6)
    assert fragment_marks(b"\0\0\0\x10moof\0\0\0\x08mdat") == (0, -1)  # no prft, no mfhd
    assert fragment_marks(b"") == (0, -1)
