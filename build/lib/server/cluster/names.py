"""Where the cluster keeps things in Redis: every key and channel name, in one place.

Everything of one event sits under the store's namespace (``forumcast:{event}:``), so two
events (or a test and a real deployment) can share one Redis without meeting::

    {p}in:{input}            stream  a publisher's fragments, about two GOPs (XADD MAXLEN ~)
    {p}prog:{stage}          stream  the stage's program, as every edge packages it
    {p}prog:{stage}:init     string  the program's init segment (written with the stream)
    {p}prog:{stage}:state    string  what the program shows, as JSON (the ``now`` event's part)
    {p}prog:{stage}:control  string  the producer's mode (auto, or manual with the source taken)
    {p}lease:{stage}         string  "{instance}|{epoch}" of the stage's leader, PX the lease
    {p}epoch:{stage}         counter the stage's fencing epoch (INCR at every new leader)
    {p}instances             set     ids of instances that have announced themselves
    {p}instance:{id}         string  an instance's JSON (address, viewers...), PX the heartbeat
    {p}hls-epoch             string  the tag in every LL-HLS media URL (one per event)
    {p}hls:{stage}:viewers   zset    LL-HLS viewer id -> its last heartbeat (ms, wall clock)
    {p}hls:{stage}:at:{id}   zset    the ids whose last heartbeat came to instance {id}
    {p}hls:{stage}:clients   zset    client address -> its last media fetch (ms, wall clock)
    {p}events                channel control events for every instance (never media)
    {p}to:{id}               channel requests and replies for one instance
"""

from __future__ import annotations

from dataclasses import dataclass

from server.store.codec import key_prefix


@dataclass(frozen=True, slots=True)
class ClusterNames:
    prefix: str

    @classmethod
    def of(cls, namespace: str) -> ClusterNames:
        return cls(key_prefix(namespace))

    def input_stream(self, input_id: str) -> str:
        return f"{self.prefix}in:{input_id}"

    def program_stream(self, stage: str) -> str:
        return f"{self.prefix}prog:{stage}"

    def program_init(self, stage: str) -> str:
        return f"{self.prefix}prog:{stage}:init"

    def program_state(self, stage: str) -> str:
        return f"{self.prefix}prog:{stage}:state"

    def program_control(self, stage: str) -> str:
        return f"{self.prefix}prog:{stage}:control"

    def lease(self, stage: str) -> str:
        return f"{self.prefix}lease:{stage}"

    def epoch(self, stage: str) -> str:
        return f"{self.prefix}epoch:{stage}"

    @property
    def instances(self) -> str:
        return f"{self.prefix}instances"

    def instance(self, instance_id: str) -> str:
        return f"{self.prefix}instance:{instance_id}"

    @property
    def hls_epoch(self) -> str:
        return f"{self.prefix}hls-epoch"

    def hls_viewers(self, stage: str) -> str:
        return f"{self.prefix}hls:{stage}:viewers"

    def hls_viewers_at(self, stage: str, instance_id: str) -> str:
        return f"{self.prefix}hls:{stage}:at:{instance_id}"

    def hls_clients(self, stage: str) -> str:
        return f"{self.prefix}hls:{stage}:clients"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    def inbox(self, instance_id: str) -> str:
        return f"{self.prefix}to:{instance_id}"
