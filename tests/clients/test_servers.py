"""The round-robin over a client's server URLs, without a loop: order, rounds, backoff."""

from __future__ import annotations

import argparse

import pytest

from clients.connection import DEFAULT_SERVER, Backoff, ClientError
from clients.servers import ServerRotation, add_server_option, servers_from, split_servers


def test_split_servers_takes_repeats_and_comma_lists_in_order() -> None:
    assert split_servers("http://a:8080") == ["http://a:8080"]
    assert split_servers(["http://a:8080,http://b:8080", " c:8080 ", "http://a:8080"]) == [
        "http://a:8080",
        "http://b:8080",
        "c:8080",
    ]
    with pytest.raises(ClientError, match="no server address"):
        split_servers([" , "])


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_option(parser)
    return parser.parse_args(list(argv))


def test_the_option_repeats_and_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORUMCAST_SERVER", raising=False)
    assert servers_from(_parse()) == [DEFAULT_SERVER]
    assert servers_from(_parse("--server", "a,b", "--server", "c")) == ["a", "b", "c"]
    monkeypatch.setenv("FORUMCAST_SERVER", "x:1,y:2")
    assert servers_from(_parse()) == ["x:1", "y:2"]
    assert servers_from(_parse("--server", "z")) == ["z"]  # the option wins over the environment


def test_one_url_is_retried_after_the_backoff_as_before() -> None:
    rotation = ServerRotation("ws://a", backoff=Backoff(initial=1, maximum=8))
    delays = [rotation.ended(carried_media=False).delay for _ in range(5)]
    assert delays == [1, 2, 4, 8, 8]
    assert rotation.current == "ws://a"
    after_media = rotation.ended(carried_media=True)
    assert (after_media.url, after_media.delay, after_media.round_over) == ("ws://a", 1, True)


def test_the_next_url_at_once_and_one_backoff_per_full_round() -> None:
    rotation = ServerRotation(["ws://a", "ws://b", "ws://c"], backoff=Backoff(initial=1, maximum=8))
    assert rotation.current == "ws://a"
    steps = [rotation.ended(carried_media=False) for _ in range(7)]
    assert [(s.url, s.delay, s.round_over) for s in steps] == [
        ("ws://b", 0, False),
        ("ws://c", 0, False),
        ("ws://a", 1, True),  # a, b and c failed: one backoff
        ("ws://b", 0, False),
        ("ws://c", 0, False),
        ("ws://a", 2, True),  # doubling per round, not per URL
        ("ws://b", 0, False),
    ]
    assert rotation.rounds == 2
    assert rotation.position == 1


def test_a_connection_that_carried_media_starts_a_fresh_round_at_the_next_url() -> None:
    rotation = ServerRotation(["ws://a", "ws://b"], backoff=Backoff(initial=1, maximum=8))
    for _ in range(4):
        rotation.ended(carried_media=False)  # two rounds: the next delay would be 4
    assert rotation.current == "ws://a"
    dropped = rotation.ended(carried_media=True)  # a worked for a while, then went away
    assert (dropped.url, dropped.delay) == ("ws://b", 0)
    failed = rotation.ended(carried_media=False)  # b is down too: the round is over
    assert (failed.url, failed.delay, failed.round_over) == ("ws://a", 1, True)  # backoff reset


def test_a_drop_in_the_middle_of_a_round_counts_from_there() -> None:
    rotation = ServerRotation(["ws://a", "ws://b", "ws://c"], backoff=Backoff(initial=1))
    rotation.ended(carried_media=False)  # a down
    on_b = rotation.ended(carried_media=True)  # b worked, then dropped
    assert (on_b.url, on_b.delay) == ("ws://c", 0)
    assert rotation.ended(carried_media=False).delay == 0  # c down; a not tried since b worked
    assert rotation.ended(carried_media=False).round_over  # a down: the round b, c, a is over
    assert rotation.current == "ws://b"


def test_a_rotation_needs_a_url() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ServerRotation([])
