"""Several instances on one machine: the worker pool (:mod:`server.workers.pool`) and the
Redis it embeds when none is configured (:mod:`server.workers.embedded_redis`)."""
