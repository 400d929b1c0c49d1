"""A strict parser and validator for HLS playlists, for the tests (not used by the server).

Written against draft-pantos-hls-rfc8216bis-22 ("HTTP Live Streaming 2nd Edition", protocol
version 13, which includes Low-Latency HLS); section numbers below are that draft's.
:func:`parse_media_playlist` and :func:`parse_multivariant_playlist` return what a playlist
says, or raise :class:`PlaylistError` naming the rule broken, its section and the line.
Where the draft says MUST, a violation is an error; a few SHOULDs that a server of ours must
not break either are errors too (marked *strict* below); other SHOULDs, and the Low-Latency
Server Configuration Profile (Appendix B.1), only add to ``warnings``.

File and line syntax (§4.1, §4.2):

- UTF-8 text, no byte order mark, NFC-normalised, no control characters except CR/LF
  (a tab only in EXT-X-SKIP's tab-delimited RECENTLY-REMOVED-DATERANGES, §4.4.5.2); lines end
  with LF or CRLF, a lone CR is refused; no whitespace except in EXTINF titles and
  quoted-strings; blank lines and comments (``#`` not followed by ``EXT``) are ignored.
- The first line is ``#EXTM3U`` (§4.4.1.1), and only the first.
- Attribute lists: ``NAME=value`` pairs separated by single commas, names of ``[A-Z0-9-]``,
  no whitespace, no name twice (§4.2). Values are typed per attribute: decimal-integer
  (1-20 digits, at most 2^64-1), decimal-floating-point (digits, optionally ``.`` and
  digits), signed-decimal-floating-point, quoted-string (non-empty unless allowed; no CR,
  LF or ``"``), hexadecimal-sequence (``0x``/``0X`` and ``[0-9A-F]``), decimal-resolution
  (``<int>x<int>``) and enumerated-strings (only the values the draft defines: an unknown
  one makes clients ignore the tag, §6.3.1, so it is refused, *strict*). A quoted value
  where an unquoted one belongs (``INDEPENDENT="YES"``) and the reverse are refused.
- Unknown tags are ignored and unknown attributes of known tags are kept (§6.3.1), except
  unknown ``REQ-`` attributes, which make clients ignore the whole tag (refused, *strict*).
- Tags are case sensitive (§4.1); a known tag with a malformed value, a value where it takes
  none, or stray whitespace is refused.
- URIs (URI lines and URI attributes) are non-empty (§4.2) RFC 3986 references: only URI
  characters, ``%`` followed by two hex digits (*strict*).
- Variable substitution (§4.3, §4.4.2.3, §6.3.1): ``{$name}`` in URI lines, quoted-strings
  and hexadecimal-sequences is replaced by a preceding EXT-X-DEFINE (NAME/VALUE, QUERYPARAM
  from the ``uri`` argument, IMPORT from the ``multivariant`` argument); an undefined
  reference, a duplicate name or a define with not exactly one of NAME/IMPORT/QUERYPARAM is
  an error.
- Tags that may appear once: EXT-X-VERSION (§4.4.1.2), EXT-X-INDEPENDENT-SEGMENTS, EXT-X-START
  (§4.4.2), every Media Playlist tag (§4.4.3), EXT-X-SKIP (§4.4.5.2), EXT-X-CONTENT-STEERING
  (§4.4.6.6).
- A Media Playlist holds no Multivariant Playlist tag and vice versa (§4.1, §4.4.3, §4.4.4,
  §4.4.6).
- EXT-X-VERSION is at least what the playlist uses (§8): 2 for EXT-X-KEY's IV; 3 for a
  floating-point EXTINF; 4 for EXT-X-BYTERANGE and EXT-X-I-FRAMES-ONLY; 5 for SAMPLE-AES,
  KEYFORMAT(VERSIONS) and EXT-X-MAP in an I-frame playlist; 6 for EXT-X-MAP in any other; 7
  for INSTREAM-ID="SERVICEn"; 8 for EXT-X-DEFINE; 9 for EXT-X-SKIP; 10 for EXT-X-SKIP with
  RECENTLY-REMOVED-DATERANGES; 11 for QUERYPARAM; 12 for ``REQ-`` attributes; 13 for
  INSTREAM-ID on a rendition that is not CLOSED-CAPTIONS. Without the tag the version is 1.

Media Playlist:

- EXT-X-TARGETDURATION is REQUIRED, a decimal-integer ≥ 1, and every EXTINF duration rounded
  to the nearest integer (halves up) is ≤ it (§4.4.3.1, §6.2.1).
- EXT-X-MEDIA-SEQUENCE and EXT-X-DISCONTINUITY-SEQUENCE come before the first Media Segment
  (§4.4.3.2, §4.4.3.3), i.e. before any Media Segment tag (§4.4.4), URI line or EXT-X-SKIP;
  EXT-X-DISCONTINUITY-SEQUENCE also before any EXT-X-DISCONTINUITY.
- EXTINF is ``<duration>,[<title>]``, comma included; every segment URI has exactly one
  EXTINF before it, and no EXTINF is left without its URI (§4.4.4.1). EXT-X-BYTERANGE is
  ``<n>[@<o>]``, without ``o`` only after a sub-range of the same resource (§4.4.4.2).
- EXT-X-KEY: METHOD one of NONE, AES-128, SAMPLE-AES, SAMPLE-AES-CTR, AES-256-GCM; NONE with
  no other attribute; URI otherwise REQUIRED; IV a 128-bit hexadecimal-sequence, not with
  AES-256-GCM or SAMPLE-AES-CTR; KEYFORMATVERSIONS ``n[/n…]`` (§4.4.4.4). An EXT-X-MAP under
  an AES-128 key needs that key's IV (§4.4.4.5).
- EXT-X-MAP: URI REQUIRED, BYTERANGE ``"<n>@<o>"`` (§4.4.4.5); it applies to the segments
  after it (``Segment.map_uri``).
- EXT-X-PROGRAM-DATE-TIME is ISO 8601 ``YYYY-MM-DDThh:mm:ss[.SSS]`` with ``Z`` or ``±hh:mm``
  (§4.4.4.6: the zone is a SHOULD; *strict*); one per segment; the date/time mapping is never
  ambiguous: each date is later than the previous segment's and overlaps it by less than a
  second (§6.2.1).
- EXT-X-PART (§3.2, §4.4.4.9): URI and DURATION REQUIRED; INDEPENDENT and GAP only as the
  enumerated-string YES; BYTERANGE ``"<n>[@<o>]"``, without ``o`` only after a part of the same
  resource in the same Parent Segment. Parts come before their Parent Segment's EXTINF (an
  EXT-X-PART between an EXTINF and its URI is refused); EXT-X-DISCONTINUITY, EXT-X-KEY,
  EXT-X-MAP and EXT-X-PROGRAM-DATE-TIME of a Parent Segment come before its first part.
  EXT-X-PART-INF is REQUIRED with any part (§4.4.3.7). Every part's duration is ≤ PART-TARGET,
  exactly: the draft allows no tolerance; and ≥ 85 % of it except INDEPENDENT=YES or GAP=YES
  parts, a part followed by a GAP=YES part and the last part of a Parent Segment (the last
  trailing part may yet be the last of its segment). A Parent Segment and its parts hold the
  same samples (§3.2): the parts' durations add up to the EXTINF (within the rounding of
  printed durations, 1 ms per value), except for the oldest segment with parts, whose
  first parts may have been removed; and since parts are removed in playlist order (§6.2.2),
  no segment after one with parts lacks them.
- EXT-X-PART-INF: PART-TARGET REQUIRED and positive (§4.4.3.7).
- EXT-X-SERVER-CONTROL (§4.4.3.8): CAN-SKIP-UNTIL ≥ 6 × target duration; CAN-SKIP-DATERANGES
  only with CAN-SKIP-UNTIL; HOLD-BACK ≥ 3 × target duration; PART-HOLD-BACK REQUIRED with
  EXT-X-PART-INF and ≥ 2 × PART-TARGET (under 3 × is a warning: the draft's SHOULD);
  CAN-BLOCK-RELOAD=YES.
- EXT-X-ENDLIST (§4.4.3.4): a playlist with it has no EXT-X-PRELOAD-HINT (§4.4.5.3), no
  EXT-X-SKIP (a server ignores ``_HLS_skip`` then, §6.2.5.1) and no parts after its last
  segment (their Parent Segment would never come, §3.2).
- EXT-X-SKIP (§4.4.5.2, §6.2.5.1): SKIPPED-SEGMENTS REQUIRED; before the first Media Segment
  (it stands for the oldest ones); only in a playlist whose EXT-X-SERVER-CONTROL has
  CAN-SKIP-UNTIL; what is left is about the Skip Boundary (not more than it plus the first
  segment kept, not less than it minus a target duration and half a second).
- EXT-X-PRELOAD-HINT (§4.4.5.3, §6.2.6): TYPE (PART or MAP) and URI REQUIRED,
  BYTERANGE-START/-LENGTH decimal-integers; at most one per TYPE (the draft's SHOULD NOT,
  clients ignore the others, *strict*); a hinted part is not one already in the playlist.
- EXT-X-RENDITION-REPORT (§4.4.5.4): URI REQUIRED and relative; LAST-MSN, LAST-PART
  decimal-integers (either may be omitted when equal to this playlist's).
- EXT-X-DATERANGE (§4.4.5.1): ID REQUIRED, START-DATE REQUIRED unless an earlier range with
  that ID had one, dates ISO 8601, END-DATE not before START-DATE, END-ON-NEXT=YES only with
  CLASS and without DURATION or END-DATE, CUE of PRE/POST/ONCE but not PRE and POST, ``X-``
  attributes quoted, hexadecimal or signed-decimal-floating-point, tags with the same ID agree
  on shared attributes, and a playlist with date ranges has an EXT-X-PROGRAM-DATE-TIME.
- EXT-X-START: TIME-OFFSET REQUIRED, PRECISE YES or NO (§4.4.2.2); EXT-X-PLAYLIST-TYPE EVENT
  or VOD (§4.4.3.5).

Multivariant Playlist:

- EXT-X-STREAM-INF (§4.4.6.2): BANDWIDTH REQUIRED; the next line that is not blank or a
  comment is its URI (no tag in between), and every URI line has one. CODECS a
  comma-separated list of RFC 6381 formats; RESOLUTION ``<w>x<h>`` (both > 0, *strict*);
  SCORE > 0; HDCP-LEVEL, VIDEO-RANGE and REQ-VIDEO-LAYOUT values as defined; STABLE-VARIANT-ID
  characters; AUDIO/VIDEO/SUBTITLES/CLOSED-CAPTIONS name a group of that TYPE, and
  CLOSED-CAPTIONS=NONE is on every variant if on one (§4.4.6.2, §4.4.6.2.1).
- EXT-X-I-FRAME-STREAM-INF: BANDWIDTH and URI REQUIRED (§4.4.6.3).
- EXT-X-MEDIA (§4.4.6.1, §4.4.6.1.1): TYPE, GROUP-ID and NAME REQUIRED; URI REQUIRED for
  SUBTITLES, absent for CLOSED-CAPTIONS; INSTREAM-ID REQUIRED for CLOSED-CAPTIONS (CC1-CC4,
  SERVICE1-SERVICE63); AUTOSELECT=YES when DEFAULT=YES; FORCED only for SUBTITLES;
  BIT-DEPTH, SAMPLE-RATE, CHANNELS only for AUDIO; names unique and at most one DEFAULT=YES
  per group.
- EXT-X-SESSION-DATA: DATA-ID REQUIRED, VALUE or URI but not both, no two with the same
  DATA-ID and LANGUAGE (§4.4.6.4); EXT-X-SESSION-KEY: as EXT-X-KEY, METHOD not NONE (§4.4.6.5);
  EXT-X-CONTENT-STEERING: SERVER-URI REQUIRED (§4.4.6.6).
- At least one EXT-X-STREAM-INF (a multivariant playlist with none plays nothing; the draft
  calls it empty but valid, *strict*).

Warnings (``warnings``): PART-HOLD-BACK under 3 × PART-TARGET (§4.4.3.8); partial segments
in an I-frame playlist (§4.4.4.9); a live playlist with parts but no EXT-X-PRELOAD-HINT, or
without EXT-X-PROGRAM-DATE-TIME (Appendix B.1); EXT-X-STREAM-INF without CODECS (§4.4.6.2).
"""

from __future__ import annotations

import abc
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = [
    "AttributeValue",
    "ByteRange",
    "DateRange",
    "IFrameVariant",
    "MediaPlaylist",
    "MultivariantPlaylist",
    "Part",
    "PlaylistError",
    "PreloadHint",
    "Rendition",
    "RenditionReport",
    "Segment",
    "Variant",
    "parse_media_playlist",
    "parse_multivariant_playlist",
]

#: A typed attribute value: decimal-integer → int, (signed-)decimal-floating-point → float,
#: quoted-, enumerated- and hexadecimal strings → str, decimal-resolution → (width, height).
AttributeValue = int | float | str | tuple[int, int]
_Value = int | Decimal | str | tuple[int, int]


class PlaylistError(ValueError):
    """A playlist that breaks RFC 8216bis. ``line`` is 1-based, None for the playlist as a whole."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


# -- what a playlist says ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByteRange:
    length: int
    offset: int | None  # None: right after the previous sub-range of the same resource


@dataclass(frozen=True, slots=True)
class Part:
    """An EXT-X-PART (a partial segment)."""

    uri: str
    duration: float
    independent: bool = False
    gap: bool = False
    byterange: ByteRange | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Segment:
    """A Media Segment: its EXTINF and URI line and what applies to it."""

    uri: str
    duration: float
    title: str
    media_sequence: int
    discontinuity: bool  # an EXT-X-DISCONTINUITY applies to it
    #: EXT-X-DISCONTINUITY-SEQUENCE plus the EXT-X-DISCONTINUITY tags up to this segment
    #: (§6.2.1); None in a delta update that skipped segments (their tags are not known).
    discontinuity_sequence: int | None
    program_date_time: datetime | None  # its own EXT-X-PROGRAM-DATE-TIME, if it has one
    map_uri: str | None  # the EXT-X-MAP in force
    parts: list[Part]
    gap: bool = False
    byterange: ByteRange | None = None
    key_method: str = "NONE"  # METHOD of the EXT-X-KEY in force
    line: int = 0  # the URI line


@dataclass(frozen=True, slots=True)
class PreloadHint:
    type: str  # PART or MAP
    uri: str
    byterange_start: int | None
    byterange_length: int | None
    line: int


@dataclass(frozen=True, slots=True)
class RenditionReport:
    uri: str
    last_msn: int | None
    last_part: int | None
    line: int


@dataclass(frozen=True, slots=True)
class DateRange:
    id: str
    start_date: datetime | None
    attributes: dict[str, AttributeValue]
    line: int


@dataclass(slots=True)
class MediaPlaylist:
    version: int  # EXT-X-VERSION, 1 without one
    target_duration: int
    media_sequence: int  # of the first segment (counting skipped ones), 0 without the tag
    discontinuity_sequence: int
    part_target: float | None  # EXT-X-PART-INF PART-TARGET
    server_control: dict[str, AttributeValue]  # e.g. {"CAN-BLOCK-RELOAD": "YES", "PART-HOLD-BACK": 0.6}
    skipped_segments: int | None  # EXT-X-SKIP SKIPPED-SEGMENTS; None if not a delta update
    segments: list[Segment]
    trailing_parts: list[Part]  # parts of the segment not yet complete (after the last URI)
    preload_hints: list[PreloadHint]
    rendition_reports: list[RenditionReport]
    ended: bool  # EXT-X-ENDLIST
    playlist_type: str | None = None
    i_frames_only: bool = False
    independent_segments: bool = False
    start: dict[str, AttributeValue] | None = None
    date_ranges: list[DateRange] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """The playlist's duration: the sum of its (listed) segments' EXTINF durations (§4.1)."""
        return sum(s.duration for s in self.segments)

    @property
    def next_media_sequence(self) -> int:
        """The Media Sequence Number of the segment after the last complete one."""
        return self.media_sequence + (self.skipped_segments or 0) + len(self.segments)

    @property
    def last_msn(self) -> int | None:
        """LAST-MSN as a rendition report would give it (§4.4.5.4): of the last part if any."""
        if self.trailing_parts:
            return self.next_media_sequence
        return self.next_media_sequence - 1 if self.segments else None

    @property
    def last_part(self) -> int | None:
        """LAST-PART (§4.4.5.4): the Part Index of the last part, None without parts there."""
        if self.trailing_parts:
            return len(self.trailing_parts) - 1
        if self.segments and self.segments[-1].parts:
            return len(self.segments[-1].parts) - 1
        return None


@dataclass(frozen=True, slots=True)
class Variant:
    """An EXT-X-STREAM-INF and its URI line."""

    uri: str
    bandwidth: int
    average_bandwidth: int | None
    codecs: list[str] | None
    resolution: tuple[int, int] | None
    frame_rate: float | None
    audio: str | None
    video: str | None
    subtitles: str | None
    closed_captions: str | None
    attributes: dict[str, AttributeValue]
    line: int


@dataclass(frozen=True, slots=True)
class IFrameVariant:
    uri: str
    bandwidth: int
    codecs: list[str] | None
    resolution: tuple[int, int] | None
    attributes: dict[str, AttributeValue]
    line: int


@dataclass(frozen=True, slots=True)
class Rendition:
    """An EXT-X-MEDIA."""

    type: str
    group_id: str
    name: str
    uri: str | None
    language: str | None
    default: bool
    autoselect: bool
    attributes: dict[str, AttributeValue]
    line: int


@dataclass(slots=True)
class MultivariantPlaylist:
    version: int
    variants: list[Variant]
    iframe_variants: list[IFrameVariant]
    renditions: list[Rendition]
    session_data: list[dict[str, AttributeValue]]
    independent_segments: bool = False
    start: dict[str, AttributeValue] | None = None
    variables: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def parse_media_playlist(
    text: str, *, uri: str | None = None, multivariant: MultivariantPlaylist | None = None
) -> MediaPlaylist:
    """Parse and check a Media Playlist. ``uri`` (the playlist's URL) is needed only for
    EXT-X-DEFINE:QUERYPARAM, ``multivariant`` only for EXT-X-DEFINE:IMPORT."""
    parser = _MediaParser(uri, None if multivariant is None else multivariant.variables)
    parser.run(text)
    return parser.result()


def parse_multivariant_playlist(text: str, *, uri: str | None = None) -> MultivariantPlaylist:
    """Parse and check a Multivariant Playlist (``uri``: for EXT-X-DEFINE:QUERYPARAM only)."""
    parser = _MultivariantParser(uri, None)
    parser.run(text)
    return parser.result()


# -- syntax --------------------------------------------------------------------------------------

_DECIMAL_INTEGER: Final = re.compile(r"[0-9]{1,20}")
_DECIMAL_FLOAT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SIGNED_FLOAT: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_HEXADECIMAL: Final = re.compile(r"0[xX][0-9A-F]+")
_RESOLUTION: Final = re.compile(r"([0-9]{1,20})x([0-9]{1,20})")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Z0-9-]+")
_VARIABLE_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_VARIABLE_REFERENCE: Final = re.compile(r"\{\$([A-Za-z0-9_-]+)\}")
_URI: Final = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DATE_TIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_BYTERANGE: Final = re.compile(r"([0-9]{1,20})(?:@([0-9]{1,20}))?")
_CODEC: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")
_STABLE_ID: Final = re.compile(r"[A-Za-z0-9+/=._-]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_MAX_INTEGER: Final = 2**64 - 1

# Attribute types (§4.2); an enumerated-string is given as the frozenset of its values.
_INT: Final = "decimal-integer"
_FLOAT: Final = "decimal-floating-point"
_SIGNED: Final = "signed-decimal-floating-point"
_QUOTED: Final = "quoted-string"
_QUOTED_EMPTY: Final = "quoted-string (may be empty)"
_QUOTED_OR_NONE: Final = "quoted-string or NONE"
_HEX: Final = "hexadecimal-sequence"
_RES: Final = "decimal-resolution"
_Kind = str | frozenset[str]
_Schema = Mapping[str, _Kind]
_YES: Final = frozenset({"YES"})
_YES_NO: Final = frozenset({"YES", "NO"})

_KEY_SCHEMA: Final[_Schema] = {
    "METHOD": frozenset({"NONE", "AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"}),
    "URI": _QUOTED,
    "IV": _HEX,
    "KEYFORMAT": _QUOTED,
    "KEYFORMATVERSIONS": _QUOTED,
}
_STREAM_INF_SCHEMA: Final[_Schema] = {
    "BANDWIDTH": _INT,
    "AVERAGE-BANDWIDTH": _INT,
    "SCORE": _FLOAT,
    "CODECS": _QUOTED,
    "SUPPLEMENTAL-CODECS": _QUOTED,
    "RESOLUTION": _RES,
    "FRAME-RATE": _FLOAT,
    "HDCP-LEVEL": frozenset({"TYPE-0", "TYPE-1", "NONE"}),
    "ALLOWED-CPC": _QUOTED,
    "VIDEO-RANGE": frozenset({"SDR", "HLG", "PQ"}),
    "REQ-VIDEO-LAYOUT": _QUOTED,
    "STABLE-VARIANT-ID": _QUOTED,
    "AUDIO": _QUOTED,
    "VIDEO": _QUOTED,
    "SUBTITLES": _QUOTED,
    "CLOSED-CAPTIONS": _QUOTED_OR_NONE,
    "PATHWAY-ID": _QUOTED,
}
_IFRAME_SCHEMA: Final[_Schema] = {
    **{
        k: v
        for k, v in _STREAM_INF_SCHEMA.items()
        if k not in ("FRAME-RATE", "AUDIO", "SUBTITLES", "CLOSED-CAPTIONS")
    },
    "URI": _QUOTED,
}
_VIDEO_LAYOUT: Final = frozenset({"CH-STEREO", "CH-MONO", "PROJ-RECT", "PROJ-EQUI", "PROJ-HEQU", "PROJ-PRIM"})

# Tag kinds (§4.4).
_BASIC: Final = frozenset({"EXTM3U", "EXT-X-VERSION"})
_SHARED: Final = frozenset({"EXT-X-INDEPENDENT-SEGMENTS", "EXT-X-START", "EXT-X-DEFINE"})
_MEDIA_PLAYLIST_TAGS: Final = frozenset(
    {
        "EXT-X-TARGETDURATION",
        "EXT-X-MEDIA-SEQUENCE",
        "EXT-X-DISCONTINUITY-SEQUENCE",
        "EXT-X-ENDLIST",
        "EXT-X-PLAYLIST-TYPE",
        "EXT-X-I-FRAMES-ONLY",
        "EXT-X-PART-INF",
        "EXT-X-SERVER-CONTROL",
    }
)
_MEDIA_SEGMENT_TAGS: Final = frozenset(
    {
        "EXTINF",
        "EXT-X-BYTERANGE",
        "EXT-X-DISCONTINUITY",
        "EXT-X-KEY",
        "EXT-X-MAP",
        "EXT-X-PROGRAM-DATE-TIME",
        "EXT-X-GAP",
        "EXT-X-BITRATE",
        "EXT-X-PART",
    }
)
_MEDIA_METADATA_TAGS: Final = frozenset(
    {"EXT-X-DATERANGE", "EXT-X-SKIP", "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT"}
)
_MULTIVARIANT_TAGS: Final = frozenset(
    {
        "EXT-X-MEDIA",
        "EXT-X-STREAM-INF",
        "EXT-X-I-FRAME-STREAM-INF",
        "EXT-X-SESSION-DATA",
        "EXT-X-SESSION-KEY",
        "EXT-X-CONTENT-STEERING",
    }
)
_MEDIA_TAGS: Final = _MEDIA_PLAYLIST_TAGS | _MEDIA_SEGMENT_TAGS | _MEDIA_METADATA_TAGS
_KNOWN: Final = _BASIC | _SHARED | _MEDIA_TAGS | _MULTIVARIANT_TAGS
_NO_VALUE: Final = frozenset(
    {
        "EXT-X-INDEPENDENT-SEGMENTS",
        "EXT-X-ENDLIST",
        "EXT-X-I-FRAMES-ONLY",
        "EXT-X-DISCONTINUITY",
        "EXT-X-GAP",
    }
)
#: Tags that may appear once, and the section that says so.
_ONCE: Final = {
    "EXT-X-VERSION": "4.4.1.2",
    "EXT-X-INDEPENDENT-SEGMENTS": "4.4.2",
    "EXT-X-START": "4.4.2",
    **dict.fromkeys(_MEDIA_PLAYLIST_TAGS, "4.4.3"),
    "EXT-X-SKIP": "4.4.5.2",
    "EXT-X-CONTENT-STEERING": "4.4.6.6",
}


def _lines(text: str) -> list[tuple[int, str]]:
    """The numbered lines of a playlist, after the file-level checks of §4.1."""
    if text.startswith("\ufeff"):
        raise PlaylistError("a Byte Order Mark: playlists MUST NOT contain one (§4.1)", 1)
    raw = text.split("\n")
    if raw[-1] == "":
        raw.pop()  # the last line's terminator
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(raw, 1):
        content = line.removesuffix("\r")
        control = _CONTROL.search(content)
        if control is not None:
            what = "a carriage return not followed by a line feed" if control.group() == "\r" else None
            raise PlaylistError(
                (what or f"control character U+{ord(control.group()):04X}")
                + " (§4.1: only CR/LF line terminators)",
                number,
            )
        if "\t" in content and not content.startswith("#EXT-X-SKIP:"):
            raise PlaylistError("a tab: control characters and whitespace are not allowed (§4.1)", number)
        if not unicodedata.is_normalized("NFC", content):
            raise PlaylistError("text not in Unicode normalization form NFC (§4.1)", number)
        lines.append((number, content))
    if not lines or lines[0][1] != "#EXTM3U":
        raise PlaylistError("the first line MUST be #EXTM3U (§4.4.1.1)", 1)
    return lines


def _split_attribute_list(tag: str, text: str, line: int) -> list[tuple[str, str, bool]]:
    """``(name, value, quoted)`` for each pair of an attribute-list (§4.2)."""
    if not text:
        raise PlaylistError(f"{tag}: empty attribute-list (§4.2)", line)
    pairs: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    i, end = 0, len(text)
    while True:
        equals = text.find("=", i)
        if equals < 0:
            raise PlaylistError(
                f"{tag}: {text[i:]!r} is not an AttributeName=AttributeValue pair (§4.2)", line
            )
        name = text[i:equals]
        if not _ATTRIBUTE_NAME.fullmatch(name):
            raise PlaylistError(
                f"{tag}: AttributeName {name!r} is not of [A-Z], [0-9] and '-' (no whitespace, §4.2)", line
            )
        i = equals + 1
        if i < end and text[i] == '"':
            close = text.find('"', i + 1)
            if close < 0:
                raise PlaylistError(f"{tag}: {name}: quoted-string without its closing quote (§4.2)", line)
            value, quoted, i = text[i + 1 : close], True, close + 1
        else:
            comma = text.find(",", i)
            stop = end if comma < 0 else comma
            value, quoted, i = text[i:stop], False, stop
            if not value:
                raise PlaylistError(f"{tag}: {name} has no value (§4.2)", line)
            if any(c.isspace() or c == '"' for c in value):
                raise PlaylistError(
                    f"{tag}: {name} value {value!r} has whitespace or a quote outside a quoted-string (§4.2)",
                    line,
                )
        if name in seen:
            raise PlaylistError(f"{tag}: attribute {name} appears twice (§4.2: MUST NOT)", line)
        seen.add(name)
        pairs.append((name, value, quoted))
        if i == end:
            return pairs
        if text[i] != ",":
            raise PlaylistError(f"{tag}: {text[i]!r} after the value of {name}, expected ',' (§4.2)", line)
        i += 1
        if i == end:
            raise PlaylistError(f"{tag}: attribute-list ends with a comma (§4.2)", line)


def _integer(text: str, what: str, line: int) -> int:
    if not _DECIMAL_INTEGER.fullmatch(text) or int(text) > _MAX_INTEGER:
        raise PlaylistError(f"{what} {text!r} is not a decimal-integer (§4.2)", line)
    return int(text)


def _date_time(text: str, what: str, line: int, section: str = "4.4.4.6") -> datetime:
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise PlaylistError(
            f"{what} {text!r} is not an ISO 8601 date-time with a time zone, "
            f"YYYY-MM-DDThh:mm:ss[.SSS](Z|±hh:mm) (§{section})",
            line,
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone != "Z":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            if int(zone[4:6]) >= 60:
                raise ValueError("minutes of the UTC offset out of range")
            tz = timezone(-offset if zone[0] == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError as error:
        raise PlaylistError(f"{what} {text!r} is not a valid date-time: {error} (§{section})", line) from None


def _byterange(text: str, what: str, line: int, *, offset_required: bool = False) -> ByteRange:
    match = _BYTERANGE.fullmatch(text)
    if match is None or (offset_required and match.group(2) is None):
        form = "<n>@<o>" if offset_required else "<n>[@<o>]"
        raise PlaylistError(f"{what} {text!r} is not a byte range {form} of decimal-integers", line)
    length = _integer(match.group(1), what, line)
    offset = None if match.group(2) is None else _integer(match.group(2), what, line)
    return ByteRange(length, offset)


def _check_uri(uri: str, what: str, line: int) -> str:
    if not uri:
        raise PlaylistError(f"{what} is empty", line)
    if any(c.isspace() for c in uri):
        raise PlaylistError(f"{what} {uri!r} contains whitespace (§4.1)", line)
    if _URI.fullmatch(uri) is None:
        raise PlaylistError(
            f"{what} {uri!r} is not a URI reference (RFC 3986 characters, '%' and two hex digits; §4.1)", line
        )
    return uri


def _public(value: _Value) -> AttributeValue:
    return float(value) if isinstance(value, Decimal) else value


def _publics(attributes: Mapping[str, _Value]) -> dict[str, AttributeValue]:
    return {name: _public(value) for name, value in attributes.items()}


def _text(value: _Value | None) -> str | None:
    return None if value is None else str(value)


def _int(value: _Value | None) -> int | None:
    return value if isinstance(value, int) else None


def _decimal(value: _Value | None) -> Decimal | None:
    return value if isinstance(value, Decimal) else None


def _seconds(value: Decimal) -> str:
    return f"{value.normalize():f}"


# -- the parsers ---------------------------------------------------------------------------------


class _Parser(abc.ABC):
    """What Media and Multivariant Playlists share: lines, basic and shared tags, attributes."""

    foreign: frozenset[str] = frozenset()
    foreign_message = ""

    def __init__(self, uri: str | None, imported: Mapping[str, str] | None) -> None:
        self.uri = uri
        self.imported = imported
        self.version: int | None = None
        self.needs: list[tuple[int, str, int]] = []  # (version, what needs it, line)
        self.once: dict[str, int] = {}
        self.variables: dict[str, str] = {}
        self.warnings: list[str] = []
        self.independent_segments = False
        self.start: dict[str, _Value] | None = None
        self.handlers: dict[str, Callable[[str, int], None]] = {
            "EXT-X-VERSION": self._version,
            "EXT-X-INDEPENDENT-SEGMENTS": self._independent_segments,
            "EXT-X-START": self._start,
            "EXT-X-DEFINE": self._define,
        }

    # lines

    def run(self, text: str) -> None:
        for number, line in _lines(text)[1:]:
            if not line:
                continue  # blank lines are ignored (§4.1)
            if line.startswith("#EXT"):
                self.tag(number, line)
            elif line.startswith("#"):
                continue  # a comment (§4.1)
            else:
                self.uri_line(number, line)
        self.finish()

    def tag(self, number: int, line: str) -> None:
        name, colon, value = line[1:].partition(":")
        bare = name.strip()
        if bare != name and bare in _KNOWN:
            raise PlaylistError(f"{bare}: whitespace in the tag (§4.1)", number)
        if name == "EXTM3U":
            raise PlaylistError("#EXTM3U again: it is the first line (§4.4.1.1)", number)
        if name in self.foreign:
            raise PlaylistError(f"{name} {self.foreign_message}", number)
        handler = self.handlers.get(name)
        if handler is None:
            return  # an unrecognized tag is ignored (§6.3.1)
        section = _ONCE.get(name)
        if section is not None:
            if name in self.once:
                raise PlaylistError(
                    f"a second {name} (first on line {self.once[name]}): it MUST NOT appear more than once "
                    f"(§{section})",
                    number,
                )
            self.once[name] = number
        if name in _NO_VALUE:
            if colon:
                raise PlaylistError(f"{name} takes no value, got {':' + value!r}", number)
        elif not colon or not value:
            raise PlaylistError(f"{name} without its value", number)
        handler(value, number)

    @abc.abstractmethod
    def uri_line(self, number: int, line: str) -> None:
        """A line that is not a tag: each kind of playlist says what it means."""

    def finish(self) -> None:
        declared = self.version or 1
        for needed, what, line in sorted(self.needs, key=lambda n: (-n[0], n[2])):
            if needed > declared:
                have = f"EXT-X-VERSION:{self.version}" if self.version else "no EXT-X-VERSION (so version 1)"
                raise PlaylistError(
                    f"{what} needs EXT-X-VERSION {needed} or higher, the playlist has {have} (§8)", line
                )
            break

    def need(self, version: int, what: str, line: int) -> None:
        self.needs.append((version, what, line))

    # values

    def substitute(self, text: str, line: int) -> str:
        """Variable references replaced (§4.3, §6.3.1)."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.variables:
                raise PlaylistError(
                    f"variable reference {match.group()} without an EXT-X-DEFINE of {name!r} before it "
                    "(§6.3.1)",
                    line,
                )
            return self.variables[name]

        return _VARIABLE_REFERENCE.sub(value, text)

    def attributes(
        self, tag: str, text: str, line: int, schema: _Schema, required: tuple[str, ...] = ()
    ) -> dict[str, _Value]:
        """An attribute-list, typed by ``schema``; unknown attributes kept as strings (§6.3.1)."""
        result: dict[str, _Value] = {}
        for name, raw, quoted in _split_attribute_list(tag, text, line):
            kind = schema.get(name)
            if kind is None:
                if name.startswith("REQ-"):
                    raise PlaylistError(
                        f"{tag}: unrecognized attribute {name}: a REQ- attribute makes clients ignore the "
                        "tag "
                        "(§6.3.1)",
                        line,
                    )
                if "\t" in raw:
                    raise PlaylistError(f"{tag}: {name}: a tab (§4.1)", line)
                result[name] = self.substitute(raw, line) if quoted else raw
                continue
            if name.startswith("REQ-"):
                self.need(12, f"attribute {name}", line)
            result[name] = self.value(tag, name, raw, quoted, kind, line)
        for name in required:
            if name not in result:
                raise PlaylistError(f"{tag} without {name}: the attribute is REQUIRED", line)
        return result

    def value(self, tag: str, name: str, raw: str, quoted: bool, kind: _Kind, line: int) -> _Value:
        where = f"{tag}: {name}"
        if kind in (_QUOTED, _QUOTED_EMPTY) or (kind == _QUOTED_OR_NONE and quoted):
            if not quoted:
                raise PlaylistError(f"{where}={raw} must be a quoted-string (§4.2)", line)
            if "\t" in raw and name != "RECENTLY-REMOVED-DATERANGES":
                raise PlaylistError(f"{where}: a tab in a quoted-string (§4.1)", line)
            text = self.substitute(raw, line)
            if not text and kind != _QUOTED_EMPTY:
                raise PlaylistError(f"{where} is an empty quoted-string (§4.2: it MUST be non-empty)", line)
            return text
        if quoted:
            what = "an enumerated-string" if isinstance(kind, frozenset) else f"a {kind}"
            raise PlaylistError(f'{where}="{raw}" must be {what}, not a quoted-string (§4.2)', line)
        if isinstance(kind, frozenset):
            if raw not in kind:
                values = ", ".join(sorted(kind))
                raise PlaylistError(
                    f"{where}={raw}: not a value of this enumerated-string ({values}); clients ignore such "
                    "a tag "
                    "(§4.2, §6.3.1)",
                    line,
                )
            return raw
        if kind == _QUOTED_OR_NONE:
            if raw != "NONE":
                raise PlaylistError(f"{where}={raw} must be a quoted-string or NONE (§4.4.6.2)", line)
            return raw
        if kind == _INT:
            return _integer(raw, where, line)
        if kind in (_FLOAT, _SIGNED):
            if not (_DECIMAL_FLOAT if kind == _FLOAT else _SIGNED_FLOAT).fullmatch(raw):
                raise PlaylistError(f"{where} {raw!r} is not a {kind} (§4.2)", line)
            return Decimal(raw)
        if kind == _HEX:
            text = self.substitute(raw, line)
            if not _HEXADECIMAL.fullmatch(text):
                raise PlaylistError(
                    f"{where} {text!r} is not a hexadecimal-sequence (0x and [0-9A-F], §4.2)", line
                )
            return text
        match = _RESOLUTION.fullmatch(raw)
        if match is None:
            raise PlaylistError(f"{where} {raw!r} is not a decimal-resolution <width>x<height> (§4.2)", line)
        return (_integer(match.group(1), where, line), _integer(match.group(2), where, line))

    def key(self, tag: str, attributes: Mapping[str, _Value], line: int) -> None:
        """The rules of EXT-X-KEY's attributes (§4.4.4.4), shared with EXT-X-SESSION-KEY."""
        method = str(attributes["METHOD"])
        others = sorted(set(attributes) - {"METHOD"})
        if method == "NONE":
            if others:
                raise PlaylistError(f"{tag}:METHOD=NONE with {', '.join(others)}: MUST NOT (§4.4.4.4)", line)
            return
        if "URI" not in attributes:
            raise PlaylistError(f"{tag} without URI: REQUIRED unless METHOD is NONE (§4.4.4.4)", line)
        _check_uri(str(attributes["URI"]), f"{tag} URI", line)
        iv = _text(attributes.get("IV"))
        if iv is not None:
            self.need(2, f"{tag} with IV", line)
            if method in ("AES-256-GCM", "SAMPLE-AES-CTR"):
                raise PlaylistError(f"{tag}: METHOD={method} MUST NOT have an IV (§4.4.4.4)", line)
            if len(iv) != 34:
                raise PlaylistError(
                    f"{tag}: IV {iv} is not a 128-bit number (32 hex digits, §4.4.4.4, §5.2)", line
                )
        if method == "SAMPLE-AES":
            self.need(5, f"{tag} with METHOD=SAMPLE-AES", line)
        for name in ("KEYFORMAT", "KEYFORMATVERSIONS"):
            if name in attributes:
                self.need(5, f"{tag} with {name}", line)
        versions = _text(attributes.get("KEYFORMATVERSIONS"))
        if versions is not None and not re.fullmatch(r"[1-9][0-9]*(?:/[1-9][0-9]*)*", versions):
            raise PlaylistError(
                f'{tag}: KEYFORMATVERSIONS "{versions}" is not positive integers separated by "/" (§4.4.4.4)',
                line,
            )

    # basic and shared tags

    def _version(self, value: str, line: int) -> None:
        version = _integer(value, "EXT-X-VERSION", line)
        if version < 1:
            raise PlaylistError(f"EXT-X-VERSION:{value}: protocol versions start at 1 (§4.4.1.2)", line)
        self.version = version

    def _independent_segments(self, value: str, line: int) -> None:
        self.independent_segments = True

    def _start(self, value: str, line: int) -> None:
        self.start = self.attributes(
            "EXT-X-START", value, line, {"TIME-OFFSET": _SIGNED, "PRECISE": _YES_NO}, ("TIME-OFFSET",)
        )

    def _define(self, value: str, line: int) -> None:
        tag = "EXT-X-DEFINE"
        schema: _Schema = {"NAME": _QUOTED, "VALUE": _QUOTED_EMPTY, "IMPORT": _QUOTED, "QUERYPARAM": _QUOTED}
        attributes = self.attributes(tag, value, line, schema)
        self.need(8, "EXT-X-DEFINE (variable substitution)", line)
        modes = [mode for mode in ("NAME", "IMPORT", "QUERYPARAM") if mode in attributes]
        if len(modes) != 1:
            raise PlaylistError(f"{tag} needs exactly one of NAME, IMPORT and QUERYPARAM (§4.4.2.3)", line)
        mode = modes[0]
        name = str(attributes[mode])
        if not _VARIABLE_NAME.fullmatch(name):
            raise PlaylistError(f"{tag}: variable name {name!r} is not of [a-zA-Z0-9_-] (§4.4.2.3)", line)
        if name in self.variables:
            raise PlaylistError(f"{tag}: variable {name!r} defined twice (§4.4.2.3)", line)
        if mode == "NAME":
            if "VALUE" not in attributes:
                raise PlaylistError(f"{tag}:NAME without VALUE: REQUIRED (§4.4.2.3)", line)
            self.variables[name] = str(attributes["VALUE"])
        elif mode == "IMPORT":
            self.variables[name] = self.import_variable(name, line)
        else:
            self.need(11, "EXT-X-DEFINE with QUERYPARAM", line)
            self.variables[name] = self.query_parameter(name, line)

    def import_variable(self, name: str, line: int) -> str:
        if self.imported is None:
            raise PlaylistError(
                f"EXT-X-DEFINE:IMPORT={name!r} but no Multivariant Playlist to import from (§4.4.2.3: the "
                "parser "
                "MUST fail; pass multivariant=)",
                line,
            )
        if name not in self.imported:
            raise PlaylistError(
                f"EXT-X-DEFINE:IMPORT={name!r}: not defined by the Multivariant Playlist (§4.4.2.3)", line
            )
        return self.imported[name]

    def query_parameter(self, name: str, line: int) -> str:
        if self.uri is None:
            raise PlaylistError(
                f"EXT-X-DEFINE:QUERYPARAM={name!r} needs the playlist's URI (pass uri=)", line
            )
        for pair in urlsplit(self.uri).query.split("&"):
            key, equals, raw = pair.partition("=")
            if unquote(key) == name and equals and raw:
                value = unquote(raw)
                if any(c in value for c in '"\r\n'):
                    raise PlaylistError(
                        f"EXT-X-DEFINE:QUERYPARAM={name!r}: value with '\"', CR or LF (§4.4.2.3)", line
                    )
                return value
        raise PlaylistError(
            f"EXT-X-DEFINE:QUERYPARAM={name!r}: no such query parameter with a value in the URI (§4.4.2.3)",
            line,
        )


@dataclass(slots=True)
class _Pending:
    """What applies to the next Media Segment, seen since the last URI line."""

    extinf: tuple[Decimal, str, int] | None = None  # duration, title, line
    byterange: tuple[ByteRange, int] | None = None
    discontinuity: bool = False
    date: tuple[datetime, int] | None = None
    gap: bool = False
    parts: list[tuple[Part, Decimal]] = field(default_factory=list)


@dataclass(slots=True)
class _Record:
    """A segment as parsed, with what the end-of-playlist checks need."""

    segment: Segment
    duration: Decimal
    extinf_line: int
    parts: list[tuple[Part, Decimal]]
    date: tuple[datetime, int] | None


class _MediaParser(_Parser):
    foreign = _MULTIVARIANT_TAGS
    foreign_message = "is a Multivariant Playlist tag: not allowed in a Media Playlist (§4.4.6)"

    def __init__(self, uri: str | None, imported: Mapping[str, str] | None) -> None:
        super().__init__(uri, imported)
        self.target: int | None = None
        self.media_sequence = 0
        self.discontinuity_sequence = 0
        self.part_target: Decimal | None = None
        self.part_inf_line = 0
        self.server_control: dict[str, _Value] | None = None
        self.server_control_line = 0
        self.skip: tuple[int, int] | None = None  # skipped segments, line
        self.playlist_type: str | None = None
        self.i_frames_only = False
        self.ended: int | None = None  # the EXT-X-ENDLIST line
        self.started: int | None = None  # line where the first Media Segment began
        self.discontinuity_seen = False
        self.discontinuities = 0
        self.pending = _Pending()
        self.records: list[_Record] = []
        self.map: tuple[str, int] | None = None  # uri, line
        self.map_lines: list[int] = []
        self.key_method = "NONE"
        self.key_aes128_without_iv = False
        self.hints: list[PreloadHint] = []
        self.reports: list[RenditionReport] = []
        self.date_ranges: list[DateRange] = []
        self.date_range_attributes: dict[str, dict[str, _Value]] = {}
        self.any_date = False
        self.handlers.update(
            {
                "EXT-X-TARGETDURATION": self._target_duration,
                "EXT-X-MEDIA-SEQUENCE": self._media_sequence,
                "EXT-X-DISCONTINUITY-SEQUENCE": self._discontinuity_sequence,
                "EXT-X-ENDLIST": self._endlist,
                "EXT-X-PLAYLIST-TYPE": self._playlist_type,
                "EXT-X-I-FRAMES-ONLY": self._i_frames_only,
                "EXT-X-PART-INF": self._part_inf,
                "EXT-X-SERVER-CONTROL": self._server_control,
                "EXTINF": self._extinf,
                "EXT-X-BYTERANGE": self._byterange,
                "EXT-X-DISCONTINUITY": self._discontinuity,
                "EXT-X-KEY": self._key,
                "EXT-X-MAP": self._map,
                "EXT-X-PROGRAM-DATE-TIME": self._program_date_time,
                "EXT-X-GAP": self._gap,
                "EXT-X-BITRATE": self._bitrate,
                "EXT-X-PART": self._part,
                "EXT-X-DATERANGE": self._date_range,
                "EXT-X-SKIP": self._skip,
                "EXT-X-PRELOAD-HINT": self._preload_hint,
                "EXT-X-RENDITION-REPORT": self._rendition_report,
            }
        )

    def tag(self, number: int, line: str) -> None:
        name = line[1:].partition(":")[0]
        if name in _MEDIA_SEGMENT_TAGS and self.started is None:
            self.started = number
        super().tag(number, line)

    # Media Playlist tags (§4.4.3)

    def _target_duration(self, value: str, line: int) -> None:
        self.target = _integer(value, "EXT-X-TARGETDURATION", line)
        if self.target < 1:
            raise PlaylistError(f"EXT-X-TARGETDURATION:{value}: MUST be at least 1 (§4.4.3.1)", line)

    def _before_first_segment(self, tag: str, section: str, line: int) -> None:
        if self.started is not None:
            raise PlaylistError(
                f"{tag} after the first Media Segment began (line {self.started}): it MUST appear before it "
                f"(§{section})",
                line,
            )

    def _media_sequence(self, value: str, line: int) -> None:
        self._before_first_segment("EXT-X-MEDIA-SEQUENCE", "4.4.3.2", line)
        self.media_sequence = _integer(value, "EXT-X-MEDIA-SEQUENCE", line)

    def _discontinuity_sequence(self, value: str, line: int) -> None:
        if self.discontinuity_seen:
            raise PlaylistError(
                "EXT-X-DISCONTINUITY-SEQUENCE after an EXT-X-DISCONTINUITY: it MUST appear before any "
                "(§4.4.3.3)",
                line,
            )
        self._before_first_segment("EXT-X-DISCONTINUITY-SEQUENCE", "4.4.3.3", line)
        self.discontinuity_sequence = _integer(value, "EXT-X-DISCONTINUITY-SEQUENCE", line)

    def _endlist(self, value: str, line: int) -> None:
        self.ended = line

    def _playlist_type(self, value: str, line: int) -> None:
        if value not in ("EVENT", "VOD"):
            raise PlaylistError(f"EXT-X-PLAYLIST-TYPE:{value}: must be EVENT or VOD (§4.4.3.5)", line)
        self.playlist_type = value

    def _i_frames_only(self, value: str, line: int) -> None:
        self.i_frames_only = True
        self.need(4, "EXT-X-I-FRAMES-ONLY", line)

    def _part_inf(self, value: str, line: int) -> None:
        attributes = self.attributes("EXT-X-PART-INF", value, line, {"PART-TARGET": _FLOAT}, ("PART-TARGET",))
        target = _decimal(attributes["PART-TARGET"])
        if target is None or target <= 0:
            raise PlaylistError("EXT-X-PART-INF: PART-TARGET must be positive (§4.4.3.7)", line)
        self.part_target, self.part_inf_line = target, line

    def _server_control(self, value: str, line: int) -> None:
        schema: _Schema = {
            "CAN-SKIP-UNTIL": _FLOAT,
            "CAN-SKIP-DATERANGES": _YES,
            "HOLD-BACK": _FLOAT,
            "PART-HOLD-BACK": _FLOAT,
            "CAN-BLOCK-RELOAD": _YES,
        }
        attributes = self.attributes("EXT-X-SERVER-CONTROL", value, line, schema)
        if "CAN-SKIP-DATERANGES" in attributes and "CAN-SKIP-UNTIL" not in attributes:
            raise PlaylistError(
                "EXT-X-SERVER-CONTROL: CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL, which it REQUIRES "
                "(§4.4.3.8)",
                line,
            )
        self.server_control, self.server_control_line = attributes, line

    # Media Segment tags (§4.4.4)

    def _not_after_parts(self, tag: str, line: int) -> None:
        if self.pending.parts:
            first = self.pending.parts[0][0].line
            raise PlaylistError(
                f"{tag} after the first EXT-X-PART of its Parent Segment (line {first}): it applies to "
                "that part "
                "too, so it MUST come before it (§4.4.4.9)",
                line,
            )

    def _extinf(self, value: str, line: int) -> None:
        if self.pending.extinf is not None:
            raise PlaylistError(
                f"a second EXTINF before the URI line of the one on line {self.pending.extinf[2]} (§4.4.4.1)",
                line,
            )
        duration, comma, title = value.partition(",")
        if not comma:
            raise PlaylistError(
                f"EXTINF:{value}: the format is #EXTINF:<duration>,[<title>] (§4.4.4.1)", line
            )
        if not _DECIMAL_FLOAT.fullmatch(duration):
            raise PlaylistError(
                f"EXTINF duration {duration!r} is not a decimal-floating-point or decimal-integer (§4.4.4.1)",
                line,
            )
        if "." in duration:
            self.need(3, "a floating-point EXTINF duration", line)
        self.pending.extinf = (Decimal(duration), title, line)

    def _byterange(self, value: str, line: int) -> None:
        self.need(4, "EXT-X-BYTERANGE", line)
        if self.pending.byterange is not None:
            raise PlaylistError("a second EXT-X-BYTERANGE for the same segment (§4.4.4.2)", line)
        self.pending.byterange = (_byterange(value, "EXT-X-BYTERANGE", line), line)

    def _discontinuity(self, value: str, line: int) -> None:
        self._not_after_parts("EXT-X-DISCONTINUITY", line)
        self.discontinuity_seen = True
        self.discontinuities += 1
        self.pending.discontinuity = True

    def _key(self, value: str, line: int) -> None:
        self._not_after_parts("EXT-X-KEY", line)
        attributes = self.attributes("EXT-X-KEY", value, line, _KEY_SCHEMA, ("METHOD",))
        self.key("EXT-X-KEY", attributes, line)
        self.key_method = str(attributes["METHOD"])
        self.key_aes128_without_iv = self.key_method == "AES-128" and "IV" not in attributes

    def _map(self, value: str, line: int) -> None:
        self._not_after_parts("EXT-X-MAP", line)
        attributes = self.attributes(
            "EXT-X-MAP", value, line, {"URI": _QUOTED, "BYTERANGE": _QUOTED}, ("URI",)
        )
        uri = _check_uri(str(attributes["URI"]), "EXT-X-MAP URI", line)
        if "BYTERANGE" in attributes:
            _byterange(str(attributes["BYTERANGE"]), "EXT-X-MAP BYTERANGE", line, offset_required=True)
        if self.key_aes128_without_iv:
            raise PlaylistError(
                "EXT-X-MAP under an EXT-X-KEY with METHOD=AES-128 and no IV: the IV is REQUIRED (§4.4.4.5)",
                line,
            )
        self.map = (uri, line)
        self.map_lines.append(line)

    def _program_date_time(self, value: str, line: int) -> None:
        self._not_after_parts("EXT-X-PROGRAM-DATE-TIME", line)
        if self.pending.date is not None:
            raise PlaylistError(
                f"a second EXT-X-PROGRAM-DATE-TIME for the segment (first on line {self.pending.date[1]}): "
                "it "
                "applies only to the next segment, two make the mapping ambiguous (§4.4.4.6, §6.2.1)",
                line,
            )
        self.pending.date = (_date_time(value, "EXT-X-PROGRAM-DATE-TIME", line), line)
        self.any_date = True

    def _gap(self, value: str, line: int) -> None:
        self.pending.gap = True

    def _bitrate(self, value: str, line: int) -> None:
        _integer(value, "EXT-X-BITRATE", line)

    def _part(self, value: str, line: int) -> None:
        tag = "EXT-X-PART"
        schema: _Schema = {
            "URI": _QUOTED,
            "DURATION": _FLOAT,
            "INDEPENDENT": _YES,
            "BYTERANGE": _QUOTED,
            "GAP": _YES,
        }
        attributes = self.attributes(tag, value, line, schema, ("URI", "DURATION"))
        if self.pending.extinf is not None:
            raise PlaylistError(
                f"EXT-X-PART after the EXTINF on line {self.pending.extinf[2]}: partial segments come before "
                "the EXTINF of their Parent Segment (§3.2, §4.4.4.9)",
                line,
            )
        uri = _check_uri(str(attributes["URI"]), "EXT-X-PART URI", line)
        byterange = None
        if "BYTERANGE" in attributes:
            byterange = _byterange(str(attributes["BYTERANGE"]), "EXT-X-PART BYTERANGE", line)
            previous = self.pending.parts[-1][0] if self.pending.parts else None
            if byterange.offset is None and (
                previous is None or previous.byterange is None or previous.uri != uri
            ):
                raise PlaylistError(
                    "EXT-X-PART BYTERANGE without an offset, but the previous part of this Parent Segment "
                    "is not "
                    "a sub-range of the same resource (§4.4.4.9)",
                    line,
                )
        duration = _decimal(attributes["DURATION"])
        assert duration is not None
        part = Part(uri, float(duration), "INDEPENDENT" in attributes, "GAP" in attributes, byterange, line)
        self.pending.parts.append((part, duration))

    def uri_line(self, number: int, line: str) -> None:
        if self.started is None:
            self.started = number
        pending = self.pending
        if pending.extinf is None:
            raise PlaylistError(
                f"URI line {line!r} without an EXTINF: REQUIRED for each Media Segment (§4.4.4.1)", number
            )
        uri = _check_uri(self.substitute(line, number), "segment URI", number)
        byterange = None
        if pending.byterange is not None:
            byterange = pending.byterange[0]
            previous = self.records[-1].segment if self.records else None
            if byterange.offset is None and (
                previous is None or previous.byterange is None or previous.uri != uri
            ):
                raise PlaylistError(
                    "EXT-X-BYTERANGE without an offset, but the previous Media Segment is not a sub-range "
                    "of the "
                    "same resource: the client MUST fail to parse the Playlist (§4.4.4.2)",
                    pending.byterange[1],
                )
        duration, title, extinf_line = pending.extinf
        skipped = self.skip[0] if self.skip else 0
        segment = Segment(
            uri=uri,
            duration=float(duration),
            title=title,
            media_sequence=self.media_sequence + skipped + len(self.records),
            discontinuity=pending.discontinuity,
            discontinuity_sequence=None if skipped else self.discontinuity_sequence + self.discontinuities,
            program_date_time=pending.date[0] if pending.date else None,
            map_uri=self.map[0] if self.map else None,
            parts=[part for part, _ in pending.parts],
            gap=pending.gap,
            byterange=byterange,
            key_method=self.key_method,
            line=number,
        )
        self.records.append(_Record(segment, duration, extinf_line, pending.parts, pending.date))
        self.pending = _Pending()

    # Media Metadata tags (§4.4.5)

    def _date_range(self, value: str, line: int) -> None:
        tag = "EXT-X-DATERANGE"
        schema: _Schema = {
            "ID": _QUOTED,
            "CLASS": _QUOTED,
            "START-DATE": _QUOTED,
            "CUE": _QUOTED,
            "END-DATE": _QUOTED,
            "DURATION": _FLOAT,
            "PLANNED-DURATION": _FLOAT,
            "END-ON-NEXT": _YES,
            "SCTE35-CMD": _HEX,
            "SCTE35-OUT": _HEX,
            "SCTE35-IN": _HEX,
        }
        pairs = _split_attribute_list(tag, value, line)
        for name, raw, quoted in pairs:
            if (
                name.startswith("X-")
                and not quoted
                and not (_HEXADECIMAL.fullmatch(raw) or _SIGNED_FLOAT.fullmatch(raw))
            ):
                raise PlaylistError(
                    f"{tag}: {name}={raw}: an X- attribute is a quoted-string, hexadecimal-sequence or "
                    "signed-decimal-floating-point (§4.4.5.1)",
                    line,
                )
        attributes = self.attributes(tag, value, line, schema, ("ID",))
        range_id = str(attributes["ID"])
        earlier = self.date_range_attributes.get(range_id)
        start = end = None
        if "START-DATE" in attributes:
            start = _date_time(str(attributes["START-DATE"]), f"{tag} START-DATE", line, "4.4.5.1")
        elif earlier is None or "START-DATE" not in earlier:
            raise PlaylistError(
                f"{tag} ID={range_id!r} without START-DATE: REQUIRED unless an earlier tag with that ID "
                "had it "
                "(§4.4.5.1)",
                line,
            )
        if "END-DATE" in attributes:
            end = _date_time(str(attributes["END-DATE"]), f"{tag} END-DATE", line, "4.4.5.1")
            if start is not None and end < start:
                raise PlaylistError(f"{tag}: END-DATE before START-DATE (§4.4.5.1)", line)
        if "END-ON-NEXT" in attributes:
            if "CLASS" not in attributes:
                raise PlaylistError(f"{tag} with END-ON-NEXT=YES MUST have a CLASS (§4.4.5.1)", line)
            if "DURATION" in attributes or "END-DATE" in attributes:
                raise PlaylistError(
                    f"{tag} with END-ON-NEXT=YES MUST NOT have DURATION or END-DATE (§4.4.5.1)", line
                )
        if "CUE" in attributes:
            cues = str(attributes["CUE"]).split(",")
            if any(cue not in ("PRE", "POST", "ONCE") for cue in cues) or {"PRE", "POST"} <= set(cues):
                raise PlaylistError(
                    f'{tag}: CUE="{attributes["CUE"]}": PRE, POST, ONCE, not both PRE and POST (§4.4.5.1)',
                    line,
                )
        duration = _decimal(attributes.get("DURATION"))
        if start is not None and end is not None and duration is not None:
            gap = abs((end - start).total_seconds() - float(duration))
            if gap > 0.001:
                raise PlaylistError(f"{tag}: END-DATE is not START-DATE plus DURATION (§4.4.5.1)", line)
        if earlier is not None:
            for name in set(earlier) & set(attributes):
                if earlier[name] != attributes[name]:
                    raise PlaylistError(
                        f"{tag} ID={range_id!r}: {name} differs from the earlier tag with that ID (§4.4.5.1)",
                        line,
                    )
            earlier.update(attributes)
        else:
            self.date_range_attributes[range_id] = dict(attributes)
        self.date_ranges.append(DateRange(range_id, start, _publics(attributes), line))

    def _skip(self, value: str, line: int) -> None:
        tag = "EXT-X-SKIP"
        schema: _Schema = {"SKIPPED-SEGMENTS": _INT, "RECENTLY-REMOVED-DATERANGES": _QUOTED_EMPTY}
        attributes = self.attributes(tag, value, line, schema, ("SKIPPED-SEGMENTS",))
        if self.started is not None:
            raise PlaylistError(
                f"EXT-X-SKIP after the first Media Segment began (line {self.started}): it replaces the "
                "oldest "
                "segments, so it comes before them (§4.4.5.2, §6.2.5.1)",
                line,
            )
        self.started = line
        self.need(9, "EXT-X-SKIP", line)
        if "RECENTLY-REMOVED-DATERANGES" in attributes:
            self.need(10, "EXT-X-SKIP replacing EXT-X-DATERANGE tags (RECENTLY-REMOVED-DATERANGES)", line)
        skipped = _int(attributes["SKIPPED-SEGMENTS"])
        assert skipped is not None
        self.skip = (skipped, line)

    def _preload_hint(self, value: str, line: int) -> None:
        tag = "EXT-X-PRELOAD-HINT"
        schema: _Schema = {
            "TYPE": frozenset({"PART", "MAP"}),
            "URI": _QUOTED,
            "BYTERANGE-START": _INT,
            "BYTERANGE-LENGTH": _INT,
        }
        attributes = self.attributes(tag, value, line, schema, ("TYPE", "URI"))
        kind = str(attributes["TYPE"])
        for hint in self.hints:
            if hint.type == kind:
                raise PlaylistError(
                    f"a second EXT-X-PRELOAD-HINT with TYPE={kind} (first on line {hint.line}): the server "
                    "SHOULD NOT "
                    "add more than one per TYPE and clients ignore all but the first (§6.2.6, §6.3.8)",
                    line,
                )
        uri = _check_uri(str(attributes["URI"]), f"{tag} URI", line)
        start, length = _int(attributes.get("BYTERANGE-START")), _int(attributes.get("BYTERANGE-LENGTH"))
        self.hints.append(PreloadHint(kind, uri, start, length, line))

    def _rendition_report(self, value: str, line: int) -> None:
        tag = "EXT-X-RENDITION-REPORT"
        schema: _Schema = {"URI": _QUOTED, "LAST-MSN": _INT, "LAST-PART": _INT}
        attributes = self.attributes(tag, value, line, schema, ("URI",))
        uri = _check_uri(str(attributes["URI"]), f"{tag} URI", line)
        if _SCHEME.match(uri) or uri.startswith("//"):
            raise PlaylistError(
                f"{tag} URI {uri!r} is absolute: it MUST be relative to the Media Playlist's URI (§4.4.5.4)",
                line,
            )
        last_msn, last_part = _int(attributes.get("LAST-MSN")), _int(attributes.get("LAST-PART"))
        self.reports.append(RenditionReport(uri, last_msn, last_part, line))

    # the playlist as a whole

    def finish(self) -> None:
        pending = self.pending
        if pending.extinf is not None:
            raise PlaylistError("EXTINF without its URI line (§4.4.4.1)", pending.extinf[2])
        if pending.byterange is not None:
            raise PlaylistError(
                "EXT-X-BYTERANGE without a URI line after it (§4.4.4.2)", pending.byterange[1]
            )
        if self.target is None:
            raise PlaylistError("no EXT-X-TARGETDURATION: the tag is REQUIRED (§4.4.3.1)")
        if self.map_lines:
            self.need(5 if self.i_frames_only else 6, self._map_need(), self.map_lines[0])
        self._check_durations(self.target)
        self._check_parts()
        self._check_server_control(self.target)
        self._check_end_and_skip(self.target)
        self._check_dates()
        super().finish()
        self._warn()

    def _map_need(self) -> str:
        return "EXT-X-MAP in an I-frame playlist" if self.i_frames_only else "EXT-X-MAP in a Media Playlist"

    def _check_durations(self, target: int) -> None:
        for record in self.records:
            rounded = record.duration.to_integral_value(ROUND_HALF_UP)
            if rounded > target:
                raise PlaylistError(
                    f"EXTINF duration {record.duration} rounds to {rounded} s, more than "
                    "EXT-X-TARGETDURATION "
                    f"{target} (§4.4.3.1)",
                    record.extinf_line,
                )

    def _check_parts(self) -> None:
        groups = [record.parts for record in self.records if record.parts]
        if self.pending.parts:
            groups.append(self.pending.parts)
        if not groups:
            return
        part_target = self.part_target
        if part_target is None:
            raise PlaylistError(
                "EXT-X-PART without EXT-X-PART-INF, REQUIRED then (§4.4.3.7)", groups[0][0][0].line
            )
        minimum = part_target * Decimal("0.85")
        for parts in groups:
            for index, (part, duration) in enumerate(parts):
                if duration > part_target:
                    raise PlaylistError(
                        f"EXT-X-PART DURATION {duration} is more than PART-TARGET {part_target}: it MUST "
                        "be less "
                        "than or equal (§4.4.4.9)",
                        part.line,
                    )
                last = index == len(parts) - 1
                before_gap = not last and parts[index + 1][0].gap
                if duration < minimum and not (part.independent or part.gap or before_gap or last):
                    raise PlaylistError(
                        f"EXT-X-PART DURATION {duration} is under 85% of PART-TARGET {part_target} "
                        f"({_seconds(minimum)}): only INDEPENDENT=YES and GAP=YES parts, a part before a "
                        "GAP=YES "
                        "part and the last part of a Parent Segment may be shorter (§4.4.4.9)",
                        part.line,
                    )
        with_parts = False
        for record in self.records:
            if not record.parts:
                if with_parts:
                    raise PlaylistError(
                        "a segment without EXT-X-PART tags after one with them: parts are removed in "
                        "playlist "
                        "order (§6.2.2), so every later segment keeps its parts",
                        record.segment.line,
                    )
                continue
            total = sum((duration for _, duration in record.parts), Decimal(0))
            tolerance = Decimal("0.001") * (len(record.parts) + 1)
            short = record.duration - total
            if short < -tolerance or (with_parts and short > tolerance):
                which = (
                    "" if with_parts else " (at most: the oldest segment's first parts may have been removed)"
                )
                raise PlaylistError(
                    f"the parts of this segment add up to {_seconds(total)} s, its EXTINF says "
                    f"{record.duration} s"
                    f"{which}: a Parent Segment and its Partial Segments hold the same media (§3.2)",
                    record.extinf_line,
                )
            with_parts = True

    def _check_server_control(self, target: int) -> None:
        control = self.server_control or {}
        line = self.server_control_line
        part_hold_back = _decimal(control.get("PART-HOLD-BACK"))
        if self.part_target is not None:
            if part_hold_back is None:
                raise PlaylistError(
                    "EXT-X-PART-INF without EXT-X-SERVER-CONTROL PART-HOLD-BACK, REQUIRED then (§4.4.3.8)",
                    line or self.part_inf_line,
                )
            if part_hold_back < 2 * self.part_target:
                raise PlaylistError(
                    f"EXT-X-SERVER-CONTROL PART-HOLD-BACK {part_hold_back} is less than twice PART-TARGET "
                    f"{self.part_target}: it MUST be at least twice (§4.4.3.8)",
                    line,
                )
            if part_hold_back < 3 * self.part_target:
                self.warnings.append(
                    f"line {line}: PART-HOLD-BACK {part_hold_back} is under three times PART-TARGET "
                    f"{self.part_target} (§4.4.3.8: SHOULD be at least three times)"
                )
        skip_until = _decimal(control.get("CAN-SKIP-UNTIL"))
        if skip_until is not None and skip_until < 6 * target:
            raise PlaylistError(
                f"EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL {skip_until} is less than six times the target "
                "duration "
                f"{target}: the Skip Boundary MUST be at least six times (§4.4.3.8)",
                line,
            )
        hold_back = _decimal(control.get("HOLD-BACK"))
        if hold_back is not None and hold_back < 3 * target:
            raise PlaylistError(
                f"EXT-X-SERVER-CONTROL HOLD-BACK {hold_back} is less than three times the target duration "
                f"{target}: "
                "it MUST be at least three times (§4.4.3.8)",
                line,
            )

    def _check_end_and_skip(self, target: int) -> None:
        if self.ended is not None:
            if self.pending.parts:
                raise PlaylistError(
                    "EXT-X-PART after the last segment of a playlist with EXT-X-ENDLIST (line "
                    f"{self.ended}): its Parent Segment will never be added (§3.2, §4.4.3.4)",
                    self.pending.parts[0][0].line,
                )
            if self.hints:
                raise PlaylistError(
                    f"EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST (line {self.ended}): MUST NOT "
                    "(§4.4.5.3)",
                    self.hints[0].line,
                )
        if self.skip is not None:
            skipped, line = self.skip
            if self.ended is not None:
                raise PlaylistError(
                    f"EXT-X-SKIP in a playlist with EXT-X-ENDLIST (line {self.ended}): a server ignores "
                    "_HLS_skip "
                    "then (§6.2.5.1)",
                    line,
                )
            boundary = _decimal((self.server_control or {}).get("CAN-SKIP-UNTIL"))
            if boundary is None:
                raise PlaylistError(
                    "EXT-X-SKIP but no CAN-SKIP-UNTIL in EXT-X-SERVER-CONTROL: there are delta updates "
                    "only then "
                    "(§6.2.5.1)",
                    line,
                )
            kept = sum((record.duration for record in self.records), Decimal(0))
            first = self.records[0].duration if self.records else Decimal(0)
            if kept - first > boundary + Decimal("0.001"):
                raise PlaylistError(
                    f"EXT-X-SKIP kept {_seconds(kept)} s of segments, more than the Skip Boundary "
                    f"{boundary} s allows: "
                    "segments further from the end than it are replaced (§6.2.5.1)",
                    line,
                )
            if skipped and kept + target + Decimal("0.5") < boundary - Decimal("0.001"):
                raise PlaylistError(
                    f"EXT-X-SKIP replaced segments within the Skip Boundary {boundary} s: only "
                    f"{_seconds(kept)} s of segments are left (§6.2.5.1)",
                    line,
                )
        existing = {part.uri for group in self._all_parts() for part in group if part.byterange is None}
        for hint in self.hints:
            if hint.type == "PART" and hint.byterange_start is None and hint.uri in existing:
                raise PlaylistError(
                    f"EXT-X-PRELOAD-HINT for {hint.uri!r}, a part already in the playlist: a hint names a "
                    "resource "
                    "to be added (§4.4.5.3)",
                    hint.line,
                )

    def _all_parts(self) -> list[list[Part]]:
        groups = [record.segment.parts for record in self.records]
        groups.append([part for part, _ in self.pending.parts])
        return groups

    def _check_dates(self) -> None:
        if self.date_ranges and not self.any_date:
            raise PlaylistError(
                "EXT-X-DATERANGE in a playlist without EXT-X-PROGRAM-DATE-TIME, which it then MUST have "
                "(§4.4.5.1)",
                self.date_ranges[0].line,
            )
        previous: tuple[datetime, Decimal] | None = None  # start and duration of the previous segment
        dated: list[tuple[tuple[datetime, int] | None, Decimal]] = [
            (r.date, r.duration) for r in self.records
        ]
        if self.pending.date is not None:
            dated.append((self.pending.date, Decimal(0)))
        for date, duration in dated:
            if date is not None and previous is not None:
                start, line = date
                overlap = (previous[0] - start).total_seconds() + float(previous[1])
                if start <= previous[0] or overlap >= 1.0:
                    raise PlaylistError(
                        f"EXT-X-PROGRAM-DATE-TIME {start.isoformat()} overlaps the previous segment by "
                        f"{overlap:.3f} s: the date/time mapping MUST NOT become ambiguous (only sub-second "
                        "overlaps, a later segment only partly overlapping the one before; §6.2.1)",
                        line,
                    )
            if date is not None:
                previous = (date[0], duration)
            elif previous is not None:
                previous = (previous[0] + timedelta(seconds=float(previous[1])), duration)

    def _warn(self) -> None:
        has_parts = any(group for group in self._all_parts())
        if has_parts and self.i_frames_only:
            self.warnings.append("partial segments in an EXT-X-I-FRAMES-ONLY playlist (§4.4.4.9: SHOULD NOT)")
        if has_parts and self.ended is None and not any(hint.type == "PART" for hint in self.hints):
            self.warnings.append(
                "a live playlist with parts but no EXT-X-PRELOAD-HINT TYPE=PART (Appendix B.1)"
            )
        if has_parts and not self.any_date:
            self.warnings.append("a low-latency playlist without EXT-X-PROGRAM-DATE-TIME (Appendix B.1)")

    def result(self) -> MediaPlaylist:
        assert self.target is not None
        return MediaPlaylist(
            version=self.version or 1,
            target_duration=self.target,
            media_sequence=self.media_sequence,
            discontinuity_sequence=self.discontinuity_sequence,
            part_target=None if self.part_target is None else float(self.part_target),
            server_control=_publics(self.server_control or {}),
            skipped_segments=None if self.skip is None else self.skip[0],
            segments=[record.segment for record in self.records],
            trailing_parts=[part for part, _ in self.pending.parts],
            preload_hints=self.hints,
            rendition_reports=self.reports,
            ended=self.ended is not None,
            playlist_type=self.playlist_type,
            i_frames_only=self.i_frames_only,
            independent_segments=self.independent_segments,
            start=None if self.start is None else _publics(self.start),
            date_ranges=self.date_ranges,
            variables=self.variables,
            warnings=self.warnings,
        )


class _MultivariantParser(_Parser):
    foreign = _MEDIA_TAGS
    foreign_message = "is a Media Playlist tag: not allowed in a Multivariant Playlist (§4.1, §4.4.3-§4.4.5)"

    def __init__(self, uri: str | None, imported: Mapping[str, str] | None) -> None:
        super().__init__(uri, imported)
        self.stream: tuple[dict[str, _Value], int] | None = None  # an EXT-X-STREAM-INF awaiting its URI
        self.variants: list[Variant] = []
        self.iframe_variants: list[IFrameVariant] = []
        self.renditions: list[Rendition] = []
        self.session_data: list[dict[str, AttributeValue]] = []
        self.session_data_keys: set[tuple[str, str | None]] = set()
        self.handlers.update(
            {
                "EXT-X-STREAM-INF": self._stream_inf,
                "EXT-X-I-FRAME-STREAM-INF": self._iframe_stream_inf,
                "EXT-X-MEDIA": self._media,
                "EXT-X-SESSION-DATA": self._session_data,
                "EXT-X-SESSION-KEY": self._session_key,
                "EXT-X-CONTENT-STEERING": self._content_steering,
            }
        )

    def tag(self, number: int, line: str) -> None:
        if self.stream is not None:
            raise PlaylistError(
                f"a tag where the URI line of the EXT-X-STREAM-INF on line {self.stream[1]} belongs "
                "(§4.4.6.2)",
                number,
            )
        super().tag(number, line)

    def import_variable(self, name: str, line: int) -> str:
        raise PlaylistError("EXT-X-DEFINE:IMPORT in a Multivariant Playlist: MUST NOT (§4.4.2.3)", line)

    def _variant_attributes(self, tag: str, attributes: Mapping[str, _Value], line: int) -> None:
        codecs = _text(attributes.get("CODECS"))
        if codecs is not None:
            for codec in codecs.split(","):
                if not _CODEC.fullmatch(codec):
                    raise PlaylistError(
                        f'{tag}: CODECS="{codecs}": {codec!r} is not an RFC 6381 format (comma-separated, no '
                        "spaces; §4.4.6.2)",
                        line,
                    )
        resolution = attributes.get("RESOLUTION")
        if isinstance(resolution, tuple) and 0 in resolution:
            raise PlaylistError(
                f"{tag}: RESOLUTION {resolution[0]}x{resolution[1]} has no pixels (§4.4.6.2)", line
            )
        score = _decimal(attributes.get("SCORE"))
        if score is not None and score <= 0:
            raise PlaylistError(f"{tag}: SCORE must be positive (§4.4.6.2)", line)
        layout = _text(attributes.get("REQ-VIDEO-LAYOUT"))
        if layout is not None:
            for entry in layout.split(","):
                specifiers = entry.split("/")
                unknown = [s for s in specifiers if s not in _VIDEO_LAYOUT]
                if not entry or unknown:
                    raise PlaylistError(
                        f"{tag}: REQ-VIDEO-LAYOUT entry {entry!r}: empty or unrecognized, so clients "
                        "ignore the tag "
                        "(§4.4.6.2)",
                        line,
                    )
        stable = _text(attributes.get("STABLE-VARIANT-ID"))
        if stable is not None and not _STABLE_ID.fullmatch(stable):
            raise PlaylistError(
                f"{tag}: STABLE-VARIANT-ID {stable!r} has characters outside the set (§4.4.6.2)", line
            )

    def _stream_inf(self, value: str, line: int) -> None:
        tag = "EXT-X-STREAM-INF"
        attributes = self.attributes(tag, value, line, _STREAM_INF_SCHEMA, ("BANDWIDTH",))
        self._variant_attributes(tag, attributes, line)
        self.stream = (attributes, line)

    def uri_line(self, number: int, line: str) -> None:
        if self.stream is None:
            raise PlaylistError(f"URI line {line!r} without an EXT-X-STREAM-INF before it (§4.4.6.2)", number)
        attributes, tag_line = self.stream
        self.stream = None
        uri = _check_uri(self.substitute(line, number), "variant URI", number)
        codecs = _text(attributes.get("CODECS"))
        resolution = attributes.get("RESOLUTION")
        frame_rate = _decimal(attributes.get("FRAME-RATE"))
        self.variants.append(
            Variant(
                uri=uri,
                bandwidth=_int(attributes["BANDWIDTH"]) or 0,
                average_bandwidth=_int(attributes.get("AVERAGE-BANDWIDTH")),
                codecs=None if codecs is None else codecs.split(","),
                resolution=resolution if isinstance(resolution, tuple) else None,
                frame_rate=None if frame_rate is None else float(frame_rate),
                audio=_text(attributes.get("AUDIO")),
                video=_text(attributes.get("VIDEO")),
                subtitles=_text(attributes.get("SUBTITLES")),
                closed_captions=_text(attributes.get("CLOSED-CAPTIONS")),
                attributes=_publics(attributes),
                line=tag_line,
            )
        )

    def _iframe_stream_inf(self, value: str, line: int) -> None:
        tag = "EXT-X-I-FRAME-STREAM-INF"
        attributes = self.attributes(tag, value, line, _IFRAME_SCHEMA, ("BANDWIDTH", "URI"))
        self._variant_attributes(tag, attributes, line)
        codecs = _text(attributes.get("CODECS"))
        resolution = attributes.get("RESOLUTION")
        self.iframe_variants.append(
            IFrameVariant(
                uri=_check_uri(str(attributes["URI"]), f"{tag} URI", line),
                bandwidth=_int(attributes["BANDWIDTH"]) or 0,
                codecs=None if codecs is None else codecs.split(","),
                resolution=resolution if isinstance(resolution, tuple) else None,
                attributes=_publics(attributes),
                line=line,
            )
        )

    def _media(self, value: str, line: int) -> None:
        tag = "EXT-X-MEDIA"
        schema: _Schema = {
            "TYPE": frozenset({"AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"}),
            "URI": _QUOTED,
            "GROUP-ID": _QUOTED,
            "LANGUAGE": _QUOTED,
            "ASSOC-LANGUAGE": _QUOTED,
            "NAME": _QUOTED,
            "STABLE-RENDITION-ID": _QUOTED,
            "DEFAULT": _YES_NO,
            "AUTOSELECT": _YES_NO,
            "FORCED": _YES_NO,
            "INSTREAM-ID": _QUOTED,
            "BIT-DEPTH": _INT,
            "SAMPLE-RATE": _INT,
            "CHARACTERISTICS": _QUOTED,
            "CHANNELS": _QUOTED,
        }
        attributes = self.attributes(tag, value, line, schema, ("TYPE", "GROUP-ID", "NAME"))
        kind = str(attributes["TYPE"])
        uri = _text(attributes.get("URI"))
        if uri is not None:
            _check_uri(uri, f"{tag} URI", line)
        if kind == "CLOSED-CAPTIONS" and uri is not None:
            raise PlaylistError(f"{tag}:TYPE=CLOSED-CAPTIONS with a URI: MUST NOT (§4.4.6.1)", line)
        if kind == "SUBTITLES" and uri is None:
            raise PlaylistError(f"{tag}:TYPE=SUBTITLES without URI: REQUIRED (§4.4.6.2.1)", line)
        instream = _text(attributes.get("INSTREAM-ID"))
        if kind == "CLOSED-CAPTIONS":
            if instream is None:
                raise PlaylistError(
                    f"{tag}:TYPE=CLOSED-CAPTIONS without INSTREAM-ID: REQUIRED (§4.4.6.1)", line
                )
            service = re.fullmatch(r"SERVICE([1-9][0-9]?)", instream)
            if instream not in ("CC1", "CC2", "CC3", "CC4") and not (service and int(service.group(1)) <= 63):
                raise PlaylistError(
                    f'{tag}: INSTREAM-ID="{instream}": CC1-CC4 or SERVICE1-SERVICE63 (§4.4.6.1)', line
                )
            if service:
                self.need(7, 'INSTREAM-ID="SERVICEn"', line)
        elif instream is not None:
            if not re.fullmatch(r"[A-Za-z0-9.]+", instream):
                raise PlaylistError(f'{tag}: INSTREAM-ID="{instream}": only [A-Za-z0-9.] (§4.4.6.1)', line)
            self.need(13, f"INSTREAM-ID on a {kind} rendition", line)
        default, autoselect = attributes.get("DEFAULT") == "YES", attributes.get("AUTOSELECT") == "YES"
        if default and "AUTOSELECT" in attributes and not autoselect:
            raise PlaylistError(
                f"{tag}: DEFAULT=YES with AUTOSELECT=NO: AUTOSELECT MUST be YES then (§4.4.6.1)", line
            )
        if "FORCED" in attributes and kind != "SUBTITLES":
            raise PlaylistError(f"{tag}: FORCED on a {kind} rendition: only SUBTITLES (§4.4.6.1)", line)
        for name in ("BIT-DEPTH", "SAMPLE-RATE", "CHANNELS"):
            if name in attributes and kind != "AUDIO":
                raise PlaylistError(f"{tag}: {name} on a {kind} rendition: only AUDIO (§4.4.6.1)", line)
        channels = _text(attributes.get("CHANNELS"))
        if channels is not None and not _DECIMAL_INTEGER.fullmatch(channels.split("/")[0]):
            raise PlaylistError(
                f'{tag}: CHANNELS="{channels}" does not start with a channel count (§4.4.6.1)', line
            )
        stable = _text(attributes.get("STABLE-RENDITION-ID"))
        if stable is not None and not _STABLE_ID.fullmatch(stable):
            raise PlaylistError(
                f"{tag}: STABLE-RENDITION-ID {stable!r} has characters outside the set (§4.4.6.1)", line
            )
        group, name = str(attributes["GROUP-ID"]), str(attributes["NAME"])
        for other in self.renditions:
            if (other.type, other.group_id) != (kind, group):
                continue
            if other.name == name:
                raise PlaylistError(f"{tag}: a second NAME={name!r} in group {group!r} (§4.4.6.1.1)", line)
            if default and other.default:
                raise PlaylistError(f"{tag}: a second DEFAULT=YES in group {group!r} (§4.4.6.1.1)", line)
        self.renditions.append(
            Rendition(
                type=kind,
                group_id=group,
                name=name,
                uri=uri,
                language=_text(attributes.get("LANGUAGE")),
                default=default,
                autoselect=autoselect,
                attributes=_publics(attributes),
                line=line,
            )
        )

    def _session_data(self, value: str, line: int) -> None:
        tag = "EXT-X-SESSION-DATA"
        schema: _Schema = {
            "DATA-ID": _QUOTED,
            "VALUE": _QUOTED,
            "URI": _QUOTED,
            "FORMAT": frozenset({"JSON", "RAW"}),
            "LANGUAGE": _QUOTED,
        }
        attributes = self.attributes(tag, value, line, schema, ("DATA-ID",))
        if ("VALUE" in attributes) == ("URI" in attributes):
            raise PlaylistError(f"{tag}: exactly one of VALUE and URI (§4.4.6.4)", line)
        key = (str(attributes["DATA-ID"]), _text(attributes.get("LANGUAGE")))
        if key in self.session_data_keys:
            raise PlaylistError(f"{tag}: a second DATA-ID={key[0]!r} with the same LANGUAGE (§4.4.6.4)", line)
        self.session_data_keys.add(key)
        self.session_data.append(_publics(attributes))

    def _session_key(self, value: str, line: int) -> None:
        tag = "EXT-X-SESSION-KEY"
        attributes = self.attributes(tag, value, line, _KEY_SCHEMA, ("METHOD",))
        if attributes["METHOD"] == "NONE":
            raise PlaylistError(f"{tag}: METHOD MUST NOT be NONE (§4.4.6.5)", line)
        self.key(tag, attributes, line)

    def _content_steering(self, value: str, line: int) -> None:
        tag = "EXT-X-CONTENT-STEERING"
        self.attributes(tag, value, line, {"SERVER-URI": _QUOTED, "PATHWAY-ID": _QUOTED}, ("SERVER-URI",))

    def finish(self) -> None:
        if self.stream is not None:
            raise PlaylistError(
                "EXT-X-STREAM-INF without the URI line after it: REQUIRED (§4.4.6.2)", self.stream[1]
            )
        if not self.variants:
            raise PlaylistError("no EXT-X-STREAM-INF: a multivariant playlist without variants plays nothing")
        groups = {(r.type, r.group_id) for r in self.renditions}
        none_captions = [v for v in self.variants if v.closed_captions == "NONE"]
        for variant in self.variants:
            references = (
                ("AUDIO", variant.audio),
                ("VIDEO", variant.video),
                ("SUBTITLES", variant.subtitles),
                ("CLOSED-CAPTIONS", variant.closed_captions if variant.closed_captions != "NONE" else None),
            )
            for kind, group in references:
                if group is not None and (kind, group) not in groups:
                    raise PlaylistError(
                        f"EXT-X-STREAM-INF {kind}={group!r}: no EXT-X-MEDIA with TYPE={kind} and that "
                        "GROUP-ID "
                        "(§4.4.6.2)",
                        variant.line,
                    )
            if none_captions and variant.closed_captions != "NONE":
                raise PlaylistError(
                    "EXT-X-STREAM-INF without CLOSED-CAPTIONS=NONE, which the one on line "
                    f"{none_captions[0].line} "
                    "has: then all MUST have it (§4.4.6.2)",
                    variant.line,
                )
            if variant.codecs is None:
                self.warnings.append(
                    f"line {variant.line}: EXT-X-STREAM-INF without CODECS (§4.4.6.2: SHOULD)"
                )
        for iframe in self.iframe_variants:
            video = iframe.attributes.get("VIDEO")
            if isinstance(video, str) and ("VIDEO", video) not in groups:
                raise PlaylistError(
                    f"EXT-X-I-FRAME-STREAM-INF VIDEO={video!r}: no EXT-X-MEDIA with TYPE=VIDEO and that "
                    "GROUP-ID "
                    "(§4.4.6.3)",
                    iframe.line,
                )
        super().finish()

    def result(self) -> MultivariantPlaylist:
        return MultivariantPlaylist(
            version=self.version or 1,
            variants=self.variants,
            iframe_variants=self.iframe_variants,
            renditions=self.renditions,
            session_data=self.session_data,
            independent_segments=self.independent_segments,
            start=None if self.start is None else _publics(self.start),
            variables=self.variables,
            warnings=self.warnings,
        )
