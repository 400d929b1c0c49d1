"""Many instances, one event: the live path shared through Redis.

Pure parts (``names``, ``entries``, ``lease``) decide and encode; the adapters (``plane``,
``leader``, ``edge``, ``registry``, ``node``) talk to Redis and to the live objects. Only the
app factory puts a :class:`~server.cluster.node.ClusterNode` together, when a Redis is set.
"""
