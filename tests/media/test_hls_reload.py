"""What a media playlist request asks for, without a loop: its key, and whether it is
answered now, held, or refused."""

from __future__ import annotations

import pytest

from server.errors import ForumcastError
from server.media.hls import Packager
from server.media.hls_reload import Decision, Reload, decide, ready, reload_of, wait_bound
from tests.media.test_hls import feed


def test_equal_requests_make_equal_keys_and_nothing_per_viewer_gets_in() -> None:
    one = reload_of({"_HLS_msn": "4", "_HLS_part": "2", "token": "T", "sid": "viewer-1", "x": "1"})
    two = reload_of({"_HLS_part": "2", "_HLS_msn": "4", "token": "T", "sid": "viewer-2"})
    assert one == two == Reload(4, 2, False, "token=T")
    assert hash(one) == hash(two)
    assert reload_of({}) == Reload() and not Reload().blocking
    assert reload_of({"_HLS_msn": "0"}).blocking
    assert reload_of({"_HLS_skip": "YES"}).skip and reload_of({"_HLS_skip": "v2"}).skip
    assert not reload_of({"_HLS_skip": "NO"}).skip
    assert reload_of({"_HLS_msn": "1", "_HLS_part": "0"}) != reload_of({"_HLS_msn": "1", "_HLS_part": "1"})


@pytest.mark.parametrize(
    "params",
    [{"_HLS_msn": "x"}, {"_HLS_msn": "-1"}, {"_HLS_msn": "²"}, {"_HLS_msn": "1" * 13}, {"_HLS_part": "1"}],
)
def test_malformed_requests_are_bad_requests(params: dict[str, str]) -> None:
    with pytest.raises(ForumcastError) as caught:
        reload_of(params)
    assert caught.value.code == "hls.bad_request"


def test_decisions_follow_the_packager() -> None:
    packager = Packager(target_duration=2.0, window=6)
    assert decide(packager, Reload()) is Decision.ANSWER
    assert decide(packager, Reload(0, 0)) is Decision.WAIT
    feed(packager, gop=25, seconds=2.4)  # segment 0 complete, segment 1 has two parts
    assert decide(packager, Reload(1, 1)) is Decision.ANSWER and ready(packager, Reload(1, 1))
    assert decide(packager, Reload(1, 2)) is Decision.WAIT and not ready(packager, Reload(1, 2))
    assert decide(packager, Reload(3)) is Decision.WAIT
    assert decide(packager, Reload(4)) is Decision.TOO_FAR
    assert wait_bound(packager) == 6.0  # three target durations
    version = packager.version
    feed(packager, gop=25, seconds=0.2)
    assert packager.version > version  # a new part: a new state of the playlist
