"""MPEG-TS (ISO 13818-1) from an SRT publisher, demultiplexed into PES packets, sans-I/O.

:class:`TsDemuxer` is fed bytes in any chunking and hands back :class:`PesPacket` values:
the payload of one PES packet of a supported elementary stream (H.264, HEVC, AAC in ADTS),
with its presentation and decode times. What it reads:

- 188-byte packets. A packet that does not start with the sync byte ``0x47`` loses the
  sync: the demuxer skips bytes until three sync bytes 188 apart line up again, counting
  ``lost_sync`` and ``skipped_bytes`` in :attr:`TsDemuxer.warnings`. SRT delivers whole
  packets, so garbage means a broken sender or a cut datagram; it is survivable, but more
  than ``max_resync`` bytes without sync is ``media.bad_ts``.
- PSI: the PAT (PID 0) names the first program's PMT; the PMT lists the elementary
  streams. Sections may span packets; a section with a bad CRC is ignored (counted), the
  next repetition replaces it. Stream types other than 0x1B (H.264), 0x24 (HEVC) and 0x0F
  (AAC ADTS) are ignored and reported once each in :attr:`TsDemuxer.ignored`. Only the
  first program is read: encoders send one.
- PES: a PES starts at a packet with ``payload_unit_start_indicator``; it ends when its
  declared ``PES_packet_length`` is reached (audio: out at once), or for length 0 (video)
  at the next start on its PID or :meth:`TsDemuxer.close`. PTS and DTS are 33-bit 90 kHz
  clocks; they are unwrapped against the last time seen on any PID of the program, so
  audio and video stay on one line across the wrap (every 26.5 hours). A PES without DTS
  has ``dts == pts``.
- Losses: a continuity counter gap (or a packet with ``transport_error_indicator``, whose
  loss the next counter shows) drops the PES in progress on that PID, counted; the next
  PES of that PID has ``discontinuity`` set so the consumer can wait for a keyframe.

Errors are :class:`~server.errors.MediaError`: ``media.bad_ts`` (no sync, a malformed PES
header, more streams than ``max_streams``) and ``media.pes_too_large`` (a PES over
``max_pes_size``). After an error every later feed raises it again.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass

from server.errors import MediaError

PACKET_SIZE = 188
SYNC_BYTE = 0x47
#: Default for ``max_pes_size``: a PES of 8 MiB holds a 4K intra frame many times over.
DEFAULT_MAX_PES_SIZE = 8 * 2**20
#: Default for ``max_streams``: elementary streams of a supported type in one PMT.
DEFAULT_MAX_STREAMS = 16
#: Default for ``max_resync``: bytes skipped looking for the sync before giving up.
DEFAULT_MAX_RESYNC = 64 * PACKET_SIZE

H264, HEVC, AAC_ADTS = 0x1B, 0x24, 0x0F
SUPPORTED_STREAM_TYPES = frozenset({H264, HEVC, AAC_ADTS})

_PAT_PID, _NULL_PID = 0x0000, 0x1FFF
_PAT_TABLE, _PMT_TABLE = 0x00, 0x02
_MAX_SECTION = 1021  # section_length's limit for PAT and PMT
_MAX_IGNORED = 64
_WRAP = 1 << 33
# Stream ids whose PES has no optional header (program stream map, padding, private 2, ...).
_NO_HEADER_IDS = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF})


@dataclass(frozen=True, slots=True)
class PesPacket:
    """One PES packet of a supported elementary stream."""

    pid: int
    stream_type: int  # H264, HEVC or AAC_ADTS
    pts: int | None  # 90 kHz, unwrapped (may exceed 2**33); None if the header has none
    dts: int | None  # 90 kHz, unwrapped; the PTS when the header has no DTS
    data: bytes  # the elementary stream bytes after the PES header
    random_access: bool  # random_access_indicator in the first packet's adaptation field
    discontinuity: bool  # data of this PID was lost just before this packet
    program: frozenset[int]  # the supported stream types the program's PMT lists


class DemuxState(enum.Enum):
    SYNCED = "synced"  # reading 188-byte packets
    SEARCHING = "searching"  # the sync was lost: looking for three aligned sync bytes
    FAILED = "failed"  # an error was raised; every later feed raises it again


class _Stream:
    """One elementary stream's PES in progress."""

    __slots__ = ("buffer", "cc", "declared", "lost", "random_access", "stream_type")

    def __init__(self, stream_type: int) -> None:
        self.stream_type = stream_type
        self.cc: int | None = None
        self.buffer: bytearray | None = None  # None: waiting for a PES start
        self.declared: int | None = None  # total PES size from its header; None: unbounded or unread
        self.random_access = False
        self.lost = False


class _Section:
    """One PSI PID's section in progress."""

    __slots__ = ("buffer", "cc")

    def __init__(self) -> None:
        self.cc: int | None = None
        self.buffer: bytearray | None = None


class TsDemuxer:
    """MPEG-TS bytes in, :class:`PesPacket` values out (sans-I/O, any chunking)."""

    def __init__(
        self,
        *,
        max_pes_size: int = DEFAULT_MAX_PES_SIZE,
        max_streams: int = DEFAULT_MAX_STREAMS,
        max_resync: int = DEFAULT_MAX_RESYNC,
    ) -> None:
        if min(max_pes_size, max_streams, max_resync) < 1:
            raise ValueError("the limits must be positive")
        self.max_pes_size = max_pes_size
        self.max_streams = max_streams
        self.max_resync = max_resync
        self.warnings: Counter[str] = Counter()
        self.ignored: dict[int, int] = {}  # PID -> stream type of streams we do not relay
        self._state = DemuxState.SYNCED
        self._error: MediaError | None = None
        self._buffer = bytearray()
        self._skipped = 0  # bytes skipped since the sync was lost
        self._sections: dict[int, _Section] = {_PAT_PID: _Section()}
        self._pmt_pid: int | None = None
        self._streams: dict[int, _Stream] = {}
        self._program: frozenset[int] = frozenset()
        self._clock: int | None = None  # the last unwrapped time, for the next unwrap

    @property
    def state(self) -> DemuxState:
        return self._state

    @property
    def streams(self) -> dict[int, int]:
        """PID -> stream type of the supported streams the current PMT lists."""
        return {pid: stream.stream_type for pid, stream in self._streams.items()}

    def feed(self, data: bytes) -> list[PesPacket]:
        """Consume ``data``; return the PES packets it completed."""
        if self._error is not None:
            raise MediaError(self._error.code, f"the stream already failed: {self._error.message}")
        self._buffer += data
        out: list[PesPacket] = []
        try:
            self._consume(out)
        except MediaError as exc:
            self._state, self._error = DemuxState.FAILED, exc
            raise
        return out

    def close(self) -> list[PesPacket]:
        """The stream ended: the PES packets still open (video's, of unbounded length).

        A PES short of its declared length is dropped and a partial last packet discarded,
        both counted: the publisher is gone, there is nobody to refuse."""
        if self._error is not None:
            return []
        out: list[PesPacket] = []
        if self._buffer:
            self.warnings["truncated_packet"] += 1
            self._buffer.clear()
        try:
            for pid, stream in self._streams.items():
                if stream.buffer is not None:
                    self._finish(pid, stream, out)
        except MediaError as exc:
            self._state, self._error = DemuxState.FAILED, exc
            raise
        return out

    # -- packets

    def _consume(self, out: list[PesPacket]) -> None:
        buffer = self._buffer
        pos = 0
        try:
            while True:
                if self._state is DemuxState.SEARCHING:
                    pos = self._search(buffer, pos)
                    if self._state is DemuxState.SEARCHING:
                        return
                if len(buffer) - pos < PACKET_SIZE:
                    return
                if buffer[pos] != SYNC_BYTE:
                    self._state, self._skipped = DemuxState.SEARCHING, 0
                    self.warnings["lost_sync"] += 1
                    continue
                self._packet(bytes(buffer[pos : pos + PACKET_SIZE]), out)
                pos += PACKET_SIZE
        finally:
            del buffer[:pos]

    def _search(self, buffer: bytearray, pos: int) -> int:
        """Skip to three sync bytes 188 apart; return where the packets start again (or
        where to look from when more bytes come)."""
        while True:
            found = buffer.find(SYNC_BYTE, pos)
            end = len(buffer) if found < 0 else found
            self._skip(end - pos)
            pos = end
            if found < 0 or len(buffer) - pos <= 2 * PACKET_SIZE:
                return pos
            if buffer[pos + PACKET_SIZE] == SYNC_BYTE and buffer[pos + 2 * PACKET_SIZE] == SYNC_BYTE:
                self._state = DemuxState.SYNCED
                return pos
            self._skip(1)
            pos += 1

    def _skip(self, count: int) -> None:
        self._skipped += count
        self.warnings["skipped_bytes"] += count
        if self._skipped > self.max_resync:
            raise MediaError("media.bad_ts", f"no MPEG-TS packet sync (0x47) in {self._skipped} bytes")

    def _packet(self, packet: bytes, out: list[PesPacket]) -> None:
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        if packet[1] & 0x80:  # transport_error_indicator: the PID itself may be wrong
            self.warnings["transport_error"] += 1
            return
        if pid == _NULL_PID:
            return
        start, control, cc = bool(packet[1] & 0x40), packet[3] >> 4 & 0x3, packet[3] & 0x0F
        if control == 0 or packet[3] & 0xC0:  # reserved, or scrambled: nothing we can read
            self.warnings["unreadable_packet"] += 1
            return
        payload_at, discontinuity, random_access = 4, False, False
        if control & 0x2:
            length = packet[4]
            if length > (183 if control == 0x2 else 182):
                self.warnings["unreadable_packet"] += 1
                return
            if length:
                discontinuity, random_access = bool(packet[5] & 0x80), bool(packet[5] & 0x40)
            payload_at = 5 + length
        if not control & 0x1:
            return  # adaptation field only (PCR): no payload, no counter step
        payload = packet[payload_at:]
        stream = self._streams.get(pid)
        if stream is not None:
            lost = self._continuity(stream, cc, discontinuity)
            if lost is not None:
                self._pes(pid, stream, payload, start, random_access, lost, out)
            return
        section = self._sections.get(pid)
        if section is not None:
            lost = self._continuity(section, cc, discontinuity)
            if lost is not None:
                self._psi(pid, section, payload, start, lost)

    def _continuity(self, owner: _Stream | _Section, cc: int, discontinuity: bool) -> bool | None:
        """Whether packets were lost before this one; None for a duplicate (skip it)."""
        previous, owner.cc = owner.cc, cc
        if previous is None or discontinuity or cc == (previous + 1) & 0x0F:
            return False
        if cc == previous:
            self.warnings["duplicate_packet"] += 1
            return None
        self.warnings["cc_error"] += 1
        return True

    # -- PSI

    def _psi(self, pid: int, section: _Section, payload: bytes, start: bool, lost: bool) -> None:
        if lost:
            section.buffer = None
        if start:
            pointer = payload[0]
            if 1 + pointer > len(payload):
                self.warnings["bad_section"] += 1
                section.buffer = None
                return
            if section.buffer is not None:
                section.buffer += payload[1 : 1 + pointer]
                self._sections_done(pid, section)
            section.buffer = bytearray(payload[1 + pointer :])
        elif section.buffer is not None:
            section.buffer += payload
        self._sections_done(pid, section)

    def _sections_done(self, pid: int, section: _Section) -> None:
        buffer = section.buffer
        while buffer is not None and len(buffer) >= 3:
            if buffer[0] == 0xFF:  # stuffing: no more sections in this packet
                section.buffer = None
                return
            length = (buffer[1] & 0x0F) << 8 | buffer[2]
            if length > _MAX_SECTION or length < 9:
                self.warnings["bad_section"] += 1
                section.buffer = None
                return
            if len(buffer) < 3 + length:
                return
            self._section(pid, bytes(buffer[: 3 + length]))
            del buffer[: 3 + length]
        if buffer is not None and not buffer:
            section.buffer = None

    def _section(self, pid: int, data: bytes) -> None:
        if _crc32(data) != 0:
            self.warnings["bad_crc"] += 1
            return
        if not data[1] & 0x80 or not data[5] & 0x01:  # not the long form, or not yet current
            return
        end = len(data) - 4
        if pid == _PAT_PID and data[0] == _PAT_TABLE:
            for at in range(8, end - 3, 4):
                if data[at] << 8 | data[at + 1]:  # program 0 is the network PID
                    self._set_pmt_pid((data[at + 2] & 0x1F) << 8 | data[at + 3])
                    return
        elif pid == self._pmt_pid and data[0] == _PMT_TABLE:
            self._pmt(data, end)

    def _set_pmt_pid(self, pmt_pid: int) -> None:
        if pmt_pid == self._pmt_pid or pmt_pid in (_PAT_PID, _NULL_PID):
            return
        if self._pmt_pid is not None:
            del self._sections[self._pmt_pid]
        self._pmt_pid = pmt_pid
        self._sections[pmt_pid] = _Section()

    def _pmt(self, data: bytes, end: int) -> None:
        at = 12 + ((data[10] & 0x0F) << 8 | data[11])
        listed: dict[int, int] = {}
        while at + 5 <= end:
            stream_type, pid = data[at], (data[at + 1] & 0x1F) << 8 | data[at + 2]
            at += 5 + ((data[at + 3] & 0x0F) << 8 | data[at + 4])
            if pid in (_PAT_PID, _NULL_PID, self._pmt_pid):
                continue
            if stream_type in SUPPORTED_STREAM_TYPES:
                listed[pid] = stream_type
            elif self.ignored.get(pid) != stream_type and len(self.ignored) < _MAX_IGNORED:
                self.ignored[pid] = stream_type
                self.warnings["ignored_stream"] += 1
        if at != end:
            self.warnings["bad_section"] += 1
            return
        if len(listed) > self.max_streams:
            raise MediaError(
                "media.bad_ts", f"the PMT lists {len(listed)} streams, over the limit of {self.max_streams}"
            )
        old = self._streams
        self._streams = {
            pid: old[pid] if pid in old and old[pid].stream_type == kind else _Stream(kind)
            for pid, kind in listed.items()
        }
        self._program = frozenset(listed.values())

    # -- PES

    def _pes(
        self,
        pid: int,
        stream: _Stream,
        payload: bytes,
        start: bool,
        random_access: bool,
        lost: bool,
        out: list[PesPacket],
    ) -> None:
        if lost:
            if stream.buffer is not None:
                self.warnings["dropped_pes"] += 1
            stream.buffer, stream.lost = None, True
        if start:
            if stream.buffer is not None:
                self._finish(pid, stream, out)
            stream.buffer, stream.declared, stream.random_access = bytearray(), None, random_access
        buffer = stream.buffer
        if buffer is None:
            return  # the middle of a PES whose start we did not see
        had = len(buffer)
        buffer += payload
        if had < 6 <= len(buffer):
            if buffer[:3] != b"\0\0\1":
                raise MediaError("media.bad_ts", f"a PES on PID {pid} does not start with 00 00 01")
            length = buffer[4] << 8 | buffer[5]
            stream.declared = 6 + length if length else None
        size = stream.declared if stream.declared is not None else len(buffer)
        if size > self.max_pes_size:
            raise MediaError(
                "media.pes_too_large", f"a PES on PID {pid} is {size} bytes, over {self.max_pes_size}"
            )
        if stream.declared is not None and len(buffer) >= stream.declared:
            del buffer[stream.declared :]  # stuffing after a bounded PES
            self._finish(pid, stream, out)

    def _finish(self, pid: int, stream: _Stream, out: list[PesPacket]) -> None:
        """Emit the PES in progress on ``pid`` (or drop it if it is short of its length)."""
        buffer, stream.buffer = stream.buffer, None
        assert buffer is not None
        if len(buffer) < 6 or (stream.declared is not None and len(buffer) < stream.declared):
            self.warnings["dropped_pes"] += 1
            stream.lost = True
            return
        pts, dts, data = self._pes_header(pid, bytes(buffer))
        out.append(
            PesPacket(
                pid, stream.stream_type, pts, dts, data, stream.random_access, stream.lost, self._program
            )
        )
        stream.lost = False

    def _pes_header(self, pid: int, pes: bytes) -> tuple[int | None, int | None, bytes]:
        if pes[3] in _NO_HEADER_IDS:
            return None, None, pes[6:]
        if len(pes) < 9 or pes[6] >> 6 != 0b10:
            raise MediaError("media.bad_ts", f"a PES header on PID {pid} lacks its '10' marker bits")
        flags, header_size = pes[7] >> 6, pes[8]
        if flags == 1 or 9 + header_size > len(pes) or header_size < (0, 0, 5, 10)[flags]:
            raise MediaError("media.bad_ts", f"a PES header on PID {pid} has bad PTS/DTS flags or length")
        pts = dts = None
        if flags & 0x2:
            pts = dts = self._unwrap(_timestamp(pes, 9))
        if flags == 3:
            dts = self._unwrap(_timestamp(pes, 14))
        return pts, dts, pes[9 + header_size :]

    def _unwrap(self, value: int) -> int:
        """``value`` (33 bits) plus the multiple of 2**33 that puts it nearest the last time."""
        if self._clock is not None:
            value += (self._clock - value + _WRAP // 2) // _WRAP * _WRAP
        self._clock = value
        return value


def _timestamp(data: bytes, at: int) -> int:
    """A 33-bit PTS or DTS from its 5 bytes (the marker bits between the parts dropped)."""
    b = data[at : at + 5]
    return (b[0] >> 1 & 0x7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = (crc << 1 ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def _crc32(data: bytes) -> int:
    """CRC-32/MPEG-2 (ISO 13818-1 Annex A): zero over a section that ends with its CRC."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc << 8 & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc
