"""Ingest from production gear: RTMP(S) and SRT listeners feeding our live inputs.

OBS Studio, vMix, hardware encoders and meeting platforms push RTMP (and the better ones
SRT); these adapters turn such a publisher into a :class:`~server.live.inputs.LiveInput`
publisher like a WebSocket one: same stream keys, takeover rule, tally and metrics. The
protocols' parsers are sans-I/O in :mod:`server.media` (``rtmp``, ``flv``, ``flv_remux``,
``mpegts``); this package holds the sockets, deadlines and admission.
"""
