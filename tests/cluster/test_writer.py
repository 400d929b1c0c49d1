"""How a leader's program fragments say where their input stood (server/cluster/writer.py):
offsets from the input's stream, portable from one instance's mirror to another's."""

from __future__ import annotations

from server.cluster.writer import continuation, portable


def test_offsets_travel_from_one_mirror_through_the_stream_to_another() -> None:
    # instance A's mirror moved the stream by +100/+400; its switcher moved that by +9000/+36000
    stream = portable({1: 9000, 2: 36000}, {1: 100, 2: 400}, "b/3")
    assert stream == {1: 9100, 2: 36400}
    # instance C's mirror of the same publisher moved the stream by -50/-200
    assert continuation(stream, "b/3", {1: -50, 2: -200}, "b/3") == {1: 9150, 2: 36600}
    # so a fragment at stream time t lands at the same program time through either mirror
    t = 51200
    assert (t + 100) + 9000 == (t - 50) + 9150


def test_no_continuation_across_publishers_or_unplaced_tracks() -> None:
    stream = {1: 9100, 2: 36400}
    assert continuation(stream, "b/3", {1: 0, 2: 0}, "c/1") is None  # another publisher's clock
    assert continuation(stream, "b/3", {1: 0}, "b/3") is None  # the mirror has not placed audio yet
    assert continuation(None, "b/3", {1: 0, 2: 0}, "b/3") is None  # the slate: nothing to continue
    assert portable({1: 5}, {1: 0}, None) is None  # a mirror without a publisher
    assert portable({1: 5, 2: 7}, {1: 0}, "b/3") is None
    assert portable(None, {1: 0}, "b/3") is None
