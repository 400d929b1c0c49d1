"""Leases: one leader per stage, fenced, and spread over the instances.

The Redis side is three Lua scripts (atomic on the server):

- :data:`ACQUIRE`: if nobody holds the stage's lease, ``INCR`` its epoch and ``SET`` the
  lease to ``"{instance}|{epoch}"`` with a time to live; answers the epoch (0: held).
- :data:`RENEW` / :data:`RELEASE`: extend / drop the lease only if it still holds our value.
- :data:`WRITE`: the *only* way program media is written. It checks that the lease still
  holds the writer's value before any ``XADD`` (and before setting the program's init and
  state), so a leader that was paused past its lease (a GC pause, ``SIGSTOP``, a network
  partition) and comes back writes nothing: its epoch is no longer the lease's.

The rest is pure: :class:`Term` tells a leader whether it may still act on its lease by its
own monotonic clock (measured from when the last renewal was *sent*, with a margin, so it
gives up before Redis could have expired it), and :func:`preference` orders the instances
for a stage by rendezvous hashing, so that the stages' leaderships spread over the
instances and every instance computes the same order without talking to the others.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

#: Seconds a lease lives unless renewed.
LEASE_TTL = 2.0
#: Seconds between a leader's renewals (several chances per lease).
RENEW_INTERVAL = 0.5
#: Share of the lease a leader trusts its own clock for: stop acting before Redis drops it.
SAFETY = 0.8
#: Seconds an instance waits per rank before it takes a free lease (the preferred one first).
RANK_DELAY = 0.3

ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return epoch
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

#: KEYS: lease, program stream, init key, state key, control key. ARGV: lease value, MAXLEN,
#: then ops: "x", n, n field/value arguments (an XADD) | "k", key index, value (a SET of
#: KEYS[index]) | "p", 0, channel, message (a PUBLISH: announced only if written).
#: Answers 0 when the lease is not ours (nothing written), else the last entry id (or 1).
WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local last = 1
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  i = i + 2
  if op == 'k' then
    redis.call('SET', KEYS[n], ARGV[i])
    i = i + 1
  elseif op == 'p' then
    redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
    i = i + 2
  else
    local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*'}
    for j = 0, n - 1 do args[#args + 1] = ARGV[i + j] end
    i = i + n
    last = redis.call(unpack(args))
  end
end
return last
"""


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


def lease_value(instance: str, epoch: int) -> str:
    return f"{instance}|{epoch}"


def parse_lease(value: str | None) -> tuple[str, int] | None:
    """``(instance, epoch)`` of a lease's value, None for no (or a malformed) lease."""
    if not value:
        return None
    instance, sep, epoch = value.rpartition("|")
    if not sep or not epoch.isdigit():
        return None
    return instance, int(epoch)


@dataclass(slots=True)
class Term:
    """A leader's hold on a stage: its epoch, and when it last renewed (monotonic seconds,
    taken when the renewal was sent)."""

    epoch: int
    value: str
    renewed: float
    ttl: float = LEASE_TTL

    def valid(self, now: float) -> bool:
        """Whether the lease surely still holds at ``now`` (by our clock, with a margin)."""
        return now < self.renewed + self.ttl * SAFETY


def preference(stage: str, instances: Iterable[str]) -> list[str]:
    """``instances`` in the order they should lead ``stage`` (highest rendezvous hash first)."""

    def score(instance: str) -> bytes:
        return hashlib.sha256(f"{instance}\x00{stage}".encode()).digest()

    return sorted(set(instances), key=score, reverse=True)


def acquire_delay(stage: str, instance: str, instances: Iterable[str]) -> float:
    """Seconds ``instance`` waits after seeing ``stage``'s lease free before taking it: its
    rank in :func:`preference` times :data:`RANK_DELAY` (an instance not listed goes last)."""
    order = preference(stage, instances)
    rank = order.index(instance) if instance in order else len(order)
    return rank * RANK_DELAY
