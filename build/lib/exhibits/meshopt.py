"""The meshoptimizer C functions the pipeline calls, through ctypes, with their argument types.

The ``meshoptimizer`` package ships the compiled library; its own wrappers are not used
(the one for ``meshopt_simplifyWithAttributes`` passes the float arguments wrongly) and
copying arrays through them would cost more than the calls. ctypes releases the GIL during
each call, so these run alongside other threads.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Marks a vertex no index refers to in the remap tables meshoptimizer fills.
UNUSED = np.uint32(0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Meshopt:
    simplify: Any
    sloppy: Any
    cache: Any
    fetch_remap: Any
    vertex_remap: Any


@functools.cache
def meshopt() -> Meshopt:
    """The functions, with their argument types set as in meshoptimizer.h.

    ``lib[name]`` makes a function object of our own, so setting its types does not touch the
    one the package's wrappers use.
    """
    from meshoptimizer._loader import lib  # type: ignore[import-untyped]

    ptr, size, flt, uint = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_float, ctypes.c_uint
    simplify = lib["meshopt_simplifyWithAttributes"]
    simplify.argtypes = [ptr, ptr, size, ptr, size, size, ptr, size, ptr, size, ptr, size, flt, uint,
                         ctypes.POINTER(flt)]  # fmt: skip
    simplify.restype = size
    sloppy = lib["meshopt_simplifySloppy"]
    sloppy.argtypes = [ptr, ptr, size, ptr, size, size, size, flt, ctypes.POINTER(flt)]
    sloppy.restype = size
    cache = lib["meshopt_optimizeVertexCache"]
    cache.argtypes = [ptr, ptr, size, size]
    cache.restype = None
    fetch_remap = lib["meshopt_optimizeVertexFetchRemap"]
    fetch_remap.argtypes = [ptr, ptr, size, size]
    fetch_remap.restype = size
    vertex_remap = lib["meshopt_generateVertexRemap"]
    vertex_remap.argtypes = [ptr, ptr, size, ptr, size, size]
    vertex_remap.restype = size
    return Meshopt(simplify, sloppy, cache, fetch_remap, vertex_remap)


def weld(
    rows: np.ndarray[Any, Any], indices: np.ndarray[Any, Any] | None = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Bitwise-distinct rows of ``rows`` (in order of first use) and, for each input row, the
    number of its distinct row.

    With ``indices``, only rows they refer to are kept and the others map to :data:`UNUSED`.
    meshoptimizer hashes each row's bytes, far faster than sorting rows in numpy.
    """
    table = np.ascontiguousarray(rows)
    count, remap = number_rows(table, indices)
    used = remap != UNUSED
    distinct = np.empty((count, *table.shape[1:]), dtype=table.dtype)
    distinct[remap[used]] = table[used]
    return distinct, remap


def number_rows(
    rows: np.ndarray[Any, Any], indices: np.ndarray[Any, Any] | None = None
) -> tuple[int, np.ndarray[Any, Any]]:
    """:func:`weld`'s numbers without the distinct rows: their count, and for each input row
    the number of its distinct row."""
    table = np.ascontiguousarray(rows)
    if not len(table):
        return 0, np.zeros(0, dtype=np.uint32)
    row_bytes = table.itemsize * (table.size // len(table))
    remap = np.empty(len(table), dtype=np.uint32)
    if indices is None:
        count = meshopt().vertex_remap(
            remap.ctypes.data, None, len(table), table.ctypes.data, len(table), row_bytes
        )
    else:
        flat = np.ascontiguousarray(indices, dtype=np.uint32).ravel()
        count = meshopt().vertex_remap(
            remap.ctypes.data, flat.ctypes.data, flat.size, table.ctypes.data, len(table), row_bytes
        )
    return int(count), remap
