"""server/ingest/srt_streamid.py: both forms of a caller's streamid, and a clear error for
every malformed one (never the key in the message)."""

from __future__ import annotations

import pytest

from server.errors import SrtError
from server.ingest.srt_streamid import StreamId, parse_streamid


def test_access_control_form_with_every_known_key() -> None:
    assert parse_streamid("#!::r=stage1-cam,k=SECRET,m=publish,u=alice") == StreamId(
        resource="stage1-cam", key="SECRET", mode="publish", user="alice"
    )


def test_order_is_free_and_mode_defaults_to_publish() -> None:
    assert parse_streamid("#!::k=SECRET,r=stage1-cam") == StreamId("stage1-cam", "SECRET", "publish", "")


def test_values_are_taken_as_written() -> None:
    # No escaping in SRT's syntax: a value runs to the next comma and may hold '=', '%', '#'.
    assert parse_streamid("#!::r=a/b%20c,k=x=y#z").key == "x=y#z"
    assert parse_streamid("#!::r=a/b%20c,k=x=y#z").resource == "a/b%20c"


def test_unknown_and_custom_keys_are_ignored() -> None:
    parsed = parse_streamid("#!::h=example.org,t=stream,acme_room=3,k=K1,r=in")
    assert parsed == StreamId("in", "K1", "publish", "")


def test_resource_may_be_left_out() -> None:
    assert parse_streamid("#!::k=K1") == StreamId("", "K1")


def test_other_modes_are_reported_for_the_caller_to_refuse() -> None:
    assert parse_streamid("#!::r=in,k=K,m=request").mode == "request"
    assert parse_streamid("#!::r=in,k=K,m=bidirectional").mode == "bidirectional"


def test_a_plain_string_is_the_key() -> None:
    assert parse_streamid("live-key-123") == StreamId("", "live-key-123")
    assert parse_streamid("r=in,k=K") == StreamId("", "r=in,k=K")  # no '#!::': all of it is the key


def test_the_limit_is_512_bytes_of_utf8() -> None:
    assert parse_streamid("k" * 512).key == "k" * 512
    with pytest.raises(SrtError, match="longer than 512 bytes"):
        parse_streamid("é" * 257)  # 514 bytes in 257 characters


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("#!:{r=in,k=K}", "only the '#!::' key=value form"),
        ("#!x", "only the '#!::' key=value form"),
        ("#!::", "item 1 has no '='"),
        ("#!::r=in,,k=K", "item 2 has no '='"),
        ("#!::r=in,k=K,", "item 3 has no '='"),
        ("#!::r=in,=K", "item 2 has an empty key"),
        ("#!::k=K,k=L", "key 'k' given twice"),
        ("#!::r=in", "no stream key"),
        ("#!::r=in,k=", "no stream key"),
        ("#!::r=,k=K", "r= is empty"),
        ("#!::r=in,k=K,m=play", "m='play' is not one of publish, request, bidirectional"),
        ("#!::r=in,k=K\n", "control characters in the value of 'k'"),
        ("key\x00", "control characters in a plain key"),
    ],
)
def test_malformed_streamids_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(SrtError) as caught:
        parse_streamid(text)
    assert caught.value.code == "srt.bad_streamid"
    assert message in caught.value.message
    assert caught.value.message.startswith("unusable SRT streamid: ")


def test_the_key_is_never_quoted_in_an_error() -> None:
    with pytest.raises(SrtError) as caught:
        parse_streamid("#!::k=TOPSECRET,k=TOPSECRET")
    assert "TOPSECRET" not in caught.value.message
