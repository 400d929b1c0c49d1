"""Reading uploaded zip archives without trusting them, and resolving references inside them.

An exhibitor uploads a glTF with its ``.bin`` and textures, or an OBJ with its ``.mtl`` and
textures, as one zip; a 3MF file is itself a zip. :func:`read_archive` turns such bytes
into an :class:`Archive`, a map of safe relative paths to contents, held in memory: nothing
is extracted to disk, so no path in the archive can ever name a file of ours.

Refusals (:class:`~server.errors.ModelError`):

- ``model.too_many_entries``: more entries than ``max_entries``;
- ``model.unsafe_archive``: an absolute path, a drive letter, a ``..`` component, a NUL or
  a symbolic link;
- ``model.archive_too_large``: declared or actual uncompressed bytes over
  ``max_unpacked_bytes``, or a compression ratio over ``max_ratio`` (per entry and in
  total) — the zip bomb checks. Headers are checked first, then the bytes are counted as
  they are inflated, because headers can lie;
- ``model.corrupt``: not a readable zip, encrypted entries, bad checksums.

:func:`resolve_uri` is the rule for references from one file to another (glTF ``uri``,
OBJ ``mtllib`` and ``map_Kd``): relative paths that stay inside the archive, nothing else;
:class:`ArchiveResolver` applies it for trimesh's loaders.
"""

from __future__ import annotations

import io
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from urllib.parse import unquote

from server.errors import ModelError

#: Local file header magic of a zip, and the end-of-central-directory magic of an empty one.
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

#: Entries smaller than this are not held to the ratio limit: a tiny text file can compress
#: 200:1 and is harmless; a bomb needs size, and the total still counts every entry.
RATIO_FLOOR_BYTES = 1 << 20

_CHUNK = 1 << 20
# What zipfile raises on a damaged archive: bad offsets surface as ValueError (negative
# seeks) or struct.error (short extra fields), unknown methods as NotImplementedError.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# Files that archivers add and that are never part of a model.
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


def is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGICS


@dataclass(frozen=True, slots=True)
class Archive:
    """The files of an archive by normalised relative POSIX path (directories left out)."""

    files: dict[str, bytes]

    def names(self) -> list[str]:
        return sorted(self.files)

    def find(self, path: str) -> bytes | None:
        """The file at ``path``, matching case-insensitively when there is no exact match.

        Models made on Windows often name ``Texture.PNG`` as ``texture.png``.
        """
        if path in self.files:
            return self.files[path]
        folded = path.casefold()
        for name, data in self.files.items():
            if name.casefold() == folded:
                return data
        return None


def read_archive(
    data: bytes,
    *,
    max_entries: int = 512,
    max_unpacked_bytes: int = 512 * 2**20,
    max_ratio: float = 100.0,
) -> Archive:
    """Every file of the zip ``data``, after the safety checks described in the module.

    ``max_entries`` counts every entry, directories included; ``max_unpacked_bytes`` is the
    total of all files once inflated; ``max_ratio`` is uncompressed / compressed size.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ModelError("model.corrupt", f"not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise ModelError(
                "model.too_many_entries",
                f"the archive has {len(infos)} entries; at most {max_entries} are accepted",
            )
        members = [info for info in infos if _check_entry(info)]
        _check_declared(members, max_unpacked_bytes=max_unpacked_bytes, max_ratio=max_ratio)
        files: dict[str, bytes] = {}
        total = 0
        for info in members:
            content = _inflate(zf, info, budget=max_unpacked_bytes - total, max_ratio=max_ratio)
            total += len(content)
            files[_member_path(info.filename)] = content
    return Archive(files)


def _check_entry(info: zipfile.ZipInfo) -> bool:
    """Refuse unsafe entries; True for a file to read, False for a directory or junk."""
    name = info.filename
    _member_path(name)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ModelError("model.unsafe_archive", f"the archive entry {name!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise ModelError("model.corrupt", f"the archive entry {name!r} is encrypted")
    if info.is_dir():
        return False
    base = posixpath.basename(name)
    return not (name.startswith(_JUNK_PREFIXES) or base in _JUNK_NAMES or base.startswith("._"))


def _member_path(name: str) -> str:
    """The entry's normalised relative path, or ``model.unsafe_archive``."""
    unified = name.replace("\\", "/")
    if "\0" in name or unified.startswith("/") or _SCHEME.match(unified):
        raise ModelError("model.unsafe_archive", f"the archive entry {name!r} has an absolute path")
    if ".." in unified.split("/"):
        raise ModelError("model.unsafe_archive", f"the archive entry {name!r} points outside the archive")
    return posixpath.normpath(unified)


def _check_declared(members: list[zipfile.ZipInfo], *, max_unpacked_bytes: int, max_ratio: float) -> None:
    """The header checks: cheap, and they stop an honest bomb before any inflating."""
    declared = 0
    compressed = 0
    for info in members:
        declared += info.file_size
        compressed += info.compress_size
        _check_ratio(info.filename, info.file_size, info.compress_size, max_ratio)
    if declared > max_unpacked_bytes:
        raise ModelError(
            "model.archive_too_large",
            f"the archive unpacks to {declared} bytes; at most {max_unpacked_bytes} are accepted",
        )
    _check_ratio("the archive", declared, compressed, max_ratio)


def _check_ratio(what: str, unpacked: int, packed: int, max_ratio: float) -> None:
    if unpacked > RATIO_FLOOR_BYTES and unpacked > max_ratio * max(packed, 1):
        raise ModelError(
            "model.archive_too_large",
            f"{what} inflates {unpacked / max(packed, 1):.0f}:1; at most {max_ratio:.0f}:1 is accepted",
        )


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int, max_ratio: float) -> bytes:
    """The entry's bytes, counted as they come: the limits hold whatever the header said."""
    chunks: list[bytes] = []
    got = 0
    try:
        with zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                got += len(chunk)
                if got > budget:
                    raise ModelError(
                        "model.archive_too_large",
                        f"the archive unpacks to more than the accepted size at {info.filename!r}",
                    )
                if got > info.file_size:
                    raise ModelError(
                        "model.archive_too_large",
                        f"the archive entry {info.filename!r} is larger than its header says",
                    )
                _check_ratio(f"the archive entry {info.filename!r}", got, info.compress_size, max_ratio)
                chunks.append(chunk)
    except _ZIP_ERRORS as exc:
        raise ModelError(
            "model.corrupt", f"the archive entry {info.filename!r} is unreadable ({exc})"
        ) from None
    return b"".join(chunks)


def resolve_uri(base_dir: str, uri: str) -> str:
    """The archive path that ``uri``, written in a file in ``base_dir``, refers to.

    Only relative references that stay inside the archive are followed; a URL, an absolute
    path or a path climbing out of the archive is ``model.external_uri``. URIs are
    percent-decoded first (glTF URIs are RFC 3986 references).
    """
    path = unquote(uri).replace("\\", "/")
    if _SCHEME.match(path):
        raise ModelError(
            "model.external_uri", f"the reference {uri!r} is a URL; only files in the upload are read"
        )
    if path.startswith("/"):
        raise ModelError("model.external_uri", f"the reference {uri!r} is an absolute path")
    joined = posixpath.normpath(posixpath.join(base_dir, path))
    if joined == ".." or joined.startswith("../") or "\0" in joined:
        raise ModelError("model.external_uri", f"the reference {uri!r} points outside the upload")
    return joined


class ArchiveResolver:
    """Serves the files a model references from the upload's archive, nothing else.

    Trimesh swallows errors raised while loading OBJ materials, so refusals and misses are
    recorded here and reported by :func:`exhibits.formats.load` once trimesh returns.
    """

    def __init__(self, archive: Archive, base_dir: str) -> None:
        self.archive = archive
        self.base_dir = base_dir
        self.refused: list[ModelError] = []
        self.missing: list[str] = []

    def get(self, name: str) -> bytes:
        try:
            path = resolve_uri(self.base_dir, name)
        except ModelError as exc:
            self.refused.append(exc)
            raise
        data = self.archive.find(path)
        if data is None:
            self.missing.append(name)
            raise KeyError(name)
        return data

    def __getitem__(self, name: str) -> bytes:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        try:
            return self.archive.find(resolve_uri(self.base_dir, name)) is not None
        except ModelError:
            return False

    def keys(self) -> list[str]:
        return self.archive.names()

    def write(self, name: str, data: bytes) -> None:
        raise PermissionError("uploads are read-only")

    def namespaced(self, namespace: str) -> ArchiveResolver:
        return ArchiveResolver(self.archive, posixpath.join(self.base_dir, namespace))
