"""Fan-out decisions (server/media/fanout.py): GOP cache and per-viewer gates, no sockets."""

from __future__ import annotations

from server.media.fanout import GateState, GopCache, Verdict, ViewerGate
from server.media.types import InitSegment, MediaFragment, TrackFragment


def fragment(seq: int, *, key: bool, size: int = 1000) -> MediaFragment:
    traf = TrackFragment(1, seq * 100, 10, 100, key, 0, 1)
    return MediaFragment(bytes(size), seq, (traf,), key, 0, 0)


def test_gop_cache_keeps_only_the_current_gop() -> None:
    cache: GopCache[str] = GopCache(max_bytes=10_000)
    cache.add(fragment(1, key=False), "a")  # before any keyframe: useless to a joiner
    assert len(cache) == 0
    for seq, key in [(2, True), (3, False), (4, False)]:
        cache.add(fragment(seq, key=key), str(seq))
    assert [f.sequence_number for f, _ in cache] == [2, 3, 4] and cache.nbytes == 3000
    cache.add(fragment(5, key=True), "5")
    assert [extra for _, extra in cache] == ["5"]


def test_gop_cache_bound_empties_until_the_next_keyframe() -> None:
    cache: GopCache[None] = GopCache(max_bytes=2500)
    cache.add(fragment(1, key=True), None)
    cache.add(fragment(2, key=False), None)
    cache.add(fragment(3, key=False), None)  # would be 3000 bytes: over the bound
    assert len(cache) == 0 and cache.nbytes == 0
    cache.add(fragment(4, key=False), None)  # still no keyframe: stays empty
    assert len(cache) == 0
    cache.add(fragment(5, key=True), None)
    assert [f.sequence_number for f, _ in cache] == [5]


def test_new_init_empties_the_cache() -> None:
    cache: GopCache[None] = GopCache()
    cache.add(fragment(1, key=True), None)
    cache.set_init(InitSegment(b"init", ()))
    assert len(cache) == 0 and cache.init is not None


def test_live_viewer_gets_everything_within_budget() -> None:
    gate = ViewerGate(send_budget=5000, max_behind=10)
    gate.joined(had_keyframe=True)
    verdicts = [gate.offer(fragment(i, key=i % 5 == 0), queued=0, now=i) for i in range(20)]
    assert verdicts == [Verdict.SEND] * 20 and gate.dropped == 0


def test_slow_viewer_skips_to_the_next_keyframe_only() -> None:
    gate = ViewerGate(send_budget=5000, max_behind=10)
    gate.joined(had_keyframe=True)
    assert gate.offer(fragment(1, key=False), queued=4500, now=0) is Verdict.SKIP  # over budget
    assert gate.state is GateState.SKIPPING
    # The queue has drained, but a delta fragment now would not decode: keep skipping.
    assert gate.offer(fragment(2, key=False), queued=0, now=1) is Verdict.SKIP
    assert gate.offer(fragment(3, key=True), queued=0, now=2) is Verdict.SEND
    assert gate.state is GateState.LIVE and gate.dropped == 2 and gate.behind_since is None


def test_keyframe_that_does_not_fit_is_skipped_too() -> None:
    gate = ViewerGate(send_budget=5000)
    gate.joined(had_keyframe=True)
    gate.offer(fragment(1, key=False), queued=6000, now=0)
    assert gate.offer(fragment(2, key=True), queued=4500, now=1) is Verdict.SKIP
    assert gate.offer(fragment(3, key=False), queued=0, now=2) is Verdict.SKIP
    assert gate.offer(fragment(4, key=True), queued=0, now=3) is Verdict.SEND


def test_viewer_behind_too_long_is_disconnected() -> None:
    gate = ViewerGate(send_budget=5000, max_behind=10)
    gate.joined(had_keyframe=True)
    verdicts = [gate.offer(fragment(i, key=False), queued=9000, now=float(i)) for i in range(12)]
    assert verdicts[:11] == [Verdict.SKIP] * 11
    assert verdicts[11] is Verdict.DISCONNECT  # behind since t=0, now 11 s > 10 s


def test_joiner_without_cached_keyframe_waits_without_counting_drops() -> None:
    gate = ViewerGate()
    gate.joined(had_keyframe=False)
    assert gate.offer(fragment(1, key=False), queued=0, now=0) is Verdict.SKIP
    assert gate.dropped == 0 and gate.behind_since is None
    assert gate.offer(fragment(2, key=True), queued=0, now=1) is Verdict.SEND
    gate.restart()  # a re-init: wait for a keyframe again
    assert gate.offer(fragment(3, key=False), queued=0, now=2) is Verdict.SKIP
    assert gate.offer(fragment(4, key=True), queued=0, now=3) is Verdict.SEND


def test_fragment_larger_than_the_budget_still_goes_to_an_idle_viewer() -> None:
    gate = ViewerGate(send_budget=500)
    gate.joined(had_keyframe=False)
    assert gate.offer(fragment(1, key=True, size=2000), queued=0, now=0) is Verdict.SEND
    assert gate.offer(fragment(2, key=False, size=2000), queued=0, now=1) is Verdict.SEND
    assert gate.offer(fragment(3, key=False, size=2000), queued=10, now=2) is Verdict.SKIP


def test_a_viewer_over_budget_after_a_reinit_is_still_behind_and_disconnected() -> None:
    gate = ViewerGate(send_budget=5000, max_behind=10)
    gate.joined(had_keyframe=True)
    gate.restart()  # a switch changed the decoder configuration
    verdicts = [gate.offer(fragment(i, key=i % 3 == 0), queued=9000, now=float(i)) for i in range(12)]
    assert verdicts[:11] == [Verdict.SKIP] * 11
    assert verdicts[11] is Verdict.DISCONNECT
    assert gate.dropped == 12 and gate.state is GateState.WAITING
    # One that catches up takes the next keyframe and is no longer behind.
    gate = ViewerGate(send_budget=5000, max_behind=10)
    gate.joined(had_keyframe=True)
    gate.restart()
    assert gate.offer(fragment(1, key=False), queued=9000, now=0) is Verdict.SKIP
    assert gate.behind_since == 0
    assert gate.offer(fragment(2, key=True), queued=0, now=1) is Verdict.SEND
    assert gate.behind_since is None and gate.state is GateState.LIVE
