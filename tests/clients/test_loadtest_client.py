"""The load-test viewer's frame walker: server frames cut at every possible place read alike."""

from __future__ import annotations

import random
import time

from clients.loadtest_client import Run, Viewer, ViewerState
from clients.source import split
from server.encoding.testpattern import encode_clip
from server.live.frames import binary_frame, text_frame
from tests.clients.test_loadtest_frames import SETTINGS


async def test_frames_cut_anywhere_are_read_alike() -> None:
    clip = split(encode_clip("LOAD", 1.2, SETTINGS, start=time.time()))
    big = binary_frame(bytes(70_000))  # a 64-bit length header
    stream = (
        text_frame({"type": "init", "mime": "video/mp4"})
        + binary_frame(clip.init.data)
        + b"".join(binary_frame(f.data) for f in clip.fragments)
        + text_frame({"type": "error", "code": "live.too_slow", "message": "x"})
        + binary_frame(b"")
        + big
    )

    def read(cuts: list[int]) -> tuple[int, ...]:
        run = Run()
        viewer = Viewer(run, b"", b"", probe=False)
        viewer.state = ViewerState.OPEN
        viewer.started_wall = 0.0  # every fragment counts as live
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            viewer._frames(stream, start, end, time.time())
        return (
            run.messages,
            run.texts,
            run.inits,
            run.fragments,
            run.drops,
            len(run.keys),
            sum(run.errors.values()),
        )

    whole = read([])
    assert whole == (len(clip.fragments) + 5, 2, 1, len(clip.fragments) + 2, 0, len(clip.fragments), 1)
    assert read(list(range(1, len(stream)))) == whole  # one byte at a time
    rng = random.Random(7)
    for _ in range(20):
        assert read(sorted(rng.sample(range(1, len(stream)), 40))) == whole
