"""Which input an RTMP publisher means: every way encoders split the URL, and the refusals."""

from __future__ import annotations

import pytest

from server.errors import RtmpError
from server.ingest.addressing import Target, rtmp_target


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        ("live", "cam?key=K", Target("cam", "K")),  # ffmpeg: rtmp://host/live/cam?key=K
        ("live", "cam/K", Target("cam", "K")),  # rtmp://host/live/cam/K
        ("live/cam", "K", Target("cam", "K")),  # OBS: server rtmp://host/live/cam, stream key K
        ("live/cam", "K?takeover=1", Target("cam", "K", True)),
        ("live/cam/", "K", Target("cam", "K")),
        ("live/cam?key=K", "anything", Target("cam", "K")),
        ("live?takeover=yes", "cam?key=K", Target("cam", "K", True)),
        ("live", "cam", Target("cam", None)),  # no key: refused by the key check, not here
        ("live", "cam?key=K&takeover=0", Target("cam", "K", False)),
    ],
)
def test_every_way_encoders_split_the_url(app: str, name: str, expected: Target) -> None:
    assert rtmp_target(app, name, expected_app="live") == expected


@pytest.mark.parametrize(
    ("app", "name", "code"),
    [
        ("vod", "cam?key=K", "rtmp.bad_app"),
        ("", "cam?key=K", "rtmp.bad_app"),
        ("live", "?key=K", "rtmp.bad_name"),
        ("live", "", "rtmp.bad_name"),
        ("live/a/b", "K", "rtmp.bad_name"),
    ],
)
def test_refusals_say_which_url_to_use(app: str, name: str, code: str) -> None:
    with pytest.raises(RtmpError) as info:
        rtmp_target(app, name, expected_app="live")
    assert info.value.code == code
    assert "rtmp://HOST" in info.value.message


def test_the_application_name_is_configurable() -> None:
    assert rtmp_target("forum/cam", "K", expected_app="forum") == Target("cam", "K")
    with pytest.raises(RtmpError):
        rtmp_target("live/cam", "K", expected_app="forum")
