"""Fixtures shared by the tests of the HLS playlist reader and the HLS probe."""

from __future__ import annotations

import pytest

from server.media.hls import Packager
from server.media.types import InitSegment


@pytest.fixture(scope="module")
def packager() -> Packager:
    """A packager (12 segments kept, so delta updates skip some) fed 3 s of one pattern, a
    re-init, then 15 s of another."""
    from clients.source import split
    from server.encoding.testpattern import PatternSettings, encode_clip

    packager = Packager(prefix="e/", window=12)
    first = split(encode_clip("a", 3.0, PatternSettings(width=320, height=180, gop=25, preset="ultrafast")))
    second = split(encode_clip("b", 3.0, PatternSettings(width=256, height=144, gop=25, preset="ultrafast")))
    fragments = [(first.init, f) for f in first.fragments] + [(second.init, f) for f in second.fragments * 5]
    init: InitSegment | None = None
    for number, (fragment_init, fragment) in enumerate(fragments):
        if fragment_init is not init:
            init = fragment_init
            packager.set_init(init)
        packager.add(fragment, wall_time=1_000.0 + number * 0.2)
    return packager
