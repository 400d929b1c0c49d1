"""The RTMP ingest core, sans-I/O: bytes from a publisher in, events and reply bytes out.

- :mod:`~server.media.rtmp.amf0`: AMF0 values, bounded decoding.
- :mod:`~server.media.rtmp.handshake`: C0 C1 C2 in, S0 S1 S2 out.
- :mod:`~server.media.rtmp.messages`: message type ids, protocol and user control messages.
- :mod:`~server.media.rtmp.chunks`: the chunk stream reader (reassembly, limits) and writer.
- :mod:`~server.media.rtmp.events`: what a session reports to its adapter.
- :mod:`~server.media.rtmp.session`: one publisher's connection as a state machine.

The asyncio adapter (sockets, deadlines, keys) and the FLV-to-fMP4 remux live elsewhere.
"""
