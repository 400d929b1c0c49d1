"""A stage's slate picture: the stand-by card shown between sessions and on failover, drawn
with Pillow (:mod:`server.live.slate_clip` encodes it as a looping clip).

:func:`render_card` draws a :class:`SlateCard`: a dark still picture with the stage title
large (Chinese above English), the next session and a small footer. It has no clock and
nothing that moves, so a two-second loop of it looks like a picture that never changes. The
layout is fixed (:data:`BANDS`, fractions of the height): each line is drawn centred in its
own band, shrunk and then ellipsized until it fits the width, so a line never spills into
another one or past the margins, and two cards that differ in one line differ only in that
line's band.

Fonts are found without fontconfig: a few well-known paths of CJK fonts (Noto Sans CJK,
WenQuanYi, Droid Sans Fallback, ...), then ``fc-match`` if it is installed, and a font
counts only if it really has Chinese glyphs (``fc-match`` happily answers DejaVu). Without
one, every line is drawn in DejaVu Sans (or Pillow's built-in font) and the characters that
font lacks are left out, never drawn as boxes: the Chinese title line disappears and
``"Next · 下一场: Keynote"`` reads ``"Next: Keynote"``. ``forumcast serve`` logs
:func:`font_warning` once at start when that is so (the fix is one package:
:data:`CJK_FONT_PACKAGE`).

Everything here is a pure function of its arguments (the caches hold fonts and glyph
coverage), safe to call from worker threads. Pillow's FreeType faces are not safe to share
between threads, so drawing holds a lock for the few milliseconds a card takes.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
Picture = npt.NDArray[np.uint8]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# --- the picture ----------------------------------------------------------------------

#: Where each line goes, as (top, bottom) fractions of the height. The title takes two
#: lines (Chinese, English) or, without a drawable Chinese title, one larger English line.
BANDS: Mapping[str, tuple[float, float]] = {
    "title_zh": (0.26, 0.40),
    "title_en": (0.41, 0.50),
    "title": (0.30, 0.46),
    "next": (0.60, 0.68),
    "footer": (0.89, 0.94),
}
#: Left and right margin, as a fraction of the width: no ink is drawn outside.
MARGIN = 0.06
#: The accent rule above the title: (top, bottom) of the height and its width.
ACCENT = (0.20, 0.208, 0.08)

BACKGROUND: RGB = (14, 20, 28)
_ACCENT_COLOR: RGB = (92, 184, 120)
_COLORS: Mapping[str, RGB] = {
    "title_zh": (244, 246, 248),
    "title_en": (196, 206, 216),
    "title": (244, 246, 248),
    "next": (138, 208, 158),
    "footer": (122, 132, 144),
}
_BOLD = frozenset({"title_zh", "title"})
_SMALLEST = 0.6  # a line shrinks down to this fraction of its size before it is ellipsized
_SEPARATORS = "·•|/-–—"

# A font is (path, face index), or None for Pillow's built-in font.
FontSource = tuple[str, int] | None

_CJK_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # face 2: Simplified Chinese
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
    ("/System/Library/Fonts/STHeiti Medium.ttc", 0),
    ("C:/Windows/Fonts/msyh.ttc", 0),
)
_LATIN_DIRS = (  # where DejaVuSans.ttf and DejaVuSans-Bold.ttf live
    "/usr/share/fonts/truetype/dejavu",  # Debian, Ubuntu
    "/usr/share/fonts/TTF",  # Arch
    "/usr/share/fonts/dejavu",  # Fedora (older), Alpine
    "/usr/share/fonts/dejavu-sans-fonts",  # Fedora
)
_CJK_PROBE = "中文下一场论坛"
_MISSING = "\uffff"  # a noncharacter: every font draws its .notdef glyph for it
#: Stand-ins for typographic and full-width characters a font lacks, used before dropping them.
_FALLBACKS: Mapping[str, str] = {
    "—": "-", "–": "-", "·": "-", "•": "-", "…": "...", "“": '"', "”": '"', "‘": "'", "’": "'",
    "：": ": ", "，": ", ", "；": "; ", "。": ". ", "、": ", ", "！": "! ", "？": "? ",
    "（": " (", "）": ") ", "【": " [", "】": "] ", "《": " <", "》": "> ", "\u3000": " ",
}  # fmt: skip

_draw_lock = threading.RLock()  # cjk_font() takes it too, inside render_card


@dataclass(frozen=True, slots=True)
class SlateCard:
    """What the slate says."""

    title_zh: str  # the stage title in Chinese ("" if it has none)
    title_en: str  # the stage title in English
    # "Next · 下一场: Keynote by Lord Stern — 14:00 (Asia/Shanghai)"; None after the last session
    next_line: str | None
    event_title: str = ""  # the small footer line


# --- fonts ------------------------------------------------------------------------------

#: The Debian package with the fonts the slate looks for first (Noto Sans CJK).
CJK_FONT_PACKAGE = "fonts-noto-cjk"


def font_warning(found: FontSource) -> str | None:
    """What to log at start when ``found`` (:func:`cjk_font`'s answer) is no CJK font."""
    if found is not None:
        return None
    return (
        "no font with Chinese glyphs found: the slate leaves out its Chinese lines "
        f"(install Debian's {CJK_FONT_PACKAGE}: apt-get install {CJK_FONT_PACKAGE})"
    )


def _usable(path: str, index: int) -> bool:
    try:
        font = ImageFont.truetype(path, 24, index=index)
    except OSError:
        return False
    return all(_has_glyph(font, char) for char in _CJK_PROBE)


@lru_cache(maxsize=1)
def cjk_font() -> FontSource:
    """A font with Chinese glyphs, or None: known paths first, then ``fc-match`` if present."""
    with _draw_lock:
        for path, index in _CJK_CANDIDATES:
            if not Path(path).is_file():
                continue
            for face in dict.fromkeys((index, 0)):  # a collection with fewer faces: its first
                if _usable(path, face):
                    return (path, face)
        found = _fc_match()
        if found is not None and _usable(found, 0):
            return (found, 0)
    return None


def _fc_match() -> str | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [exe, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = result.stdout.strip()
    return path if result.returncode == 0 and path and Path(path).is_file() else None


@lru_cache(maxsize=1)
def _latin_paths() -> tuple[str, str] | None:
    """DejaVu Sans (regular, bold) if it is installed."""
    for folder in _LATIN_DIRS:
        regular, bold = Path(folder, "DejaVuSans.ttf"), Path(folder, "DejaVuSans-Bold.ttf")
        if regular.is_file():
            return str(regular), str(bold if bold.is_file() else regular)
    return None


def _sources() -> dict[bool, FontSource]:
    """The font for regular (False) and bold (True) lines."""
    cjk = cjk_font()
    if cjk is not None:
        return {False: cjk, True: cjk}
    latin = _latin_paths()
    if latin is None:
        return {False: None, True: None}
    regular, bold = latin
    return {False: (regular, 0), True: (bold, 0)}


@lru_cache(maxsize=256)
def _font(source: FontSource, size: int) -> Font:
    if source is None:
        return ImageFont.load_default(size)
    path, index = source
    return ImageFont.truetype(path, size, index=index)


def _glyph(font: Font, char: str) -> bytes:
    image = Image.new("L", (64, 64))
    ImageDraw.Draw(image).text((16, 16), char, font=font, fill=255)
    return image.tobytes()


def _has_glyph(font: Font, char: str) -> bool:
    return char.isspace() or _glyph(font, char) != _glyph(font, _MISSING)


@lru_cache(maxsize=8192)
def _covers(source: FontSource, char: str) -> bool:
    return _has_glyph(_font(source, 32), char)


def drawable(text: str, source: FontSource) -> str:
    """``text`` without the characters the font lacks, and without the separators and spaces
    their removal left dangling (``"Next · 下一场: Keynote"`` -> ``"Next: Keynote"``)."""
    kept = "".join(_stand_in(char, source) for char in text)
    if kept == text:
        return text
    seps = re.escape(_SEPARATORS)
    kept = re.sub(rf"\s*[{seps}]\s*(?=[:：,，;；)）]|$)", "", kept)  # a separator before nothing
    kept = re.sub(rf"^\s*[{seps}:：,，;；]\s*", "", kept)  # leading punctuation
    kept = re.sub(r"\(\s*\)|（\s*）", "", kept)  # emptied brackets
    kept = re.sub(r"\s+([:：,，;；])", r"\1", kept)
    return re.sub(r"\s{2,}", " ", kept).strip()


def _stand_in(char: str, source: FontSource) -> str:
    if _covers(source, char):
        return char
    fallback = _FALLBACKS.get(char, "")
    return fallback if all(_covers(source, c) for c in fallback) else ""


# --- drawing ---------------------------------------------------------------------------


def _fit(text: str, source: FontSource, size: int, width: int, height: int) -> tuple[Font, str]:
    """The largest font from ``size`` down to a fraction of it in which ``text`` fits, or
    the smallest one with ``text`` cut and ended with an ellipsis."""
    smallest = max(6, math.floor(size * _SMALLEST))
    font = _font(source, size)
    for step in range(size, smallest - 1, -max(1, size // 24)):
        font = _font(source, step)
        if _fits(font, text, width, height):
            return font, text
    ellipsis = "…" if _covers(source, "…") else "..."
    low, high = 0, len(text)  # the longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(font, text[:middle].rstrip() + ellipsis, width, height):
            low = middle
        else:
            high = middle - 1
    return font, (text[:low].rstrip() + ellipsis if low else "")


def _fits(font: Font, text: str, width: int, height: int) -> bool:
    left, top, right, bottom = font.getbbox(text)
    return right - left <= width and bottom - top <= height


def _draw_line(draw: ImageDraw.ImageDraw, band: str, text: str, source: FontSource, w: int, h: int) -> None:
    text = drawable(text.strip(), source)
    if not text:
        return
    top, bottom = (round(f * h) for f in BANDS[band])
    left, right = math.ceil(MARGIN * w), w - math.ceil(MARGIN * w)
    font, text = _fit(text, source, max(6, round((bottom - top) * 0.72)), right - left, bottom - top)
    if not text:
        return
    x0, y0, x1, y1 = font.getbbox(text)
    x = (left + right - (x1 - x0)) // 2 - x0
    y = (top + bottom - (y1 - y0)) // 2 - y0
    draw.text((x, y), text, font=font, fill=_COLORS[band])


def render_card(card: SlateCard, width: int, height: int) -> Picture:
    """The slate picture, RGB ``(height, width, 3)`` uint8."""
    if width < 16 or height < 16:
        raise ValueError(f"slate picture must be at least 16x16, not {width}x{height}")
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    top, bottom, span = ACCENT
    bar = max(2, round(width * span))
    draw.rectangle(
        (
            (width - bar) // 2,
            round(top * height),
            (width - bar) // 2 + bar - 1,
            max(round(top * height), round(bottom * height) - 1),
        ),
        fill=_ACCENT_COLOR,
    )
    with _draw_lock:
        sources = _sources()
        if drawable(card.title_zh.strip(), sources["title_zh" in _BOLD]):
            lines = {"title_zh": card.title_zh, "title_en": card.title_en}
        else:
            lines = {"title": card.title_en}
        lines |= {"next": card.next_line or "", "footer": card.event_title}
        for band, text in lines.items():
            _draw_line(draw, band, text, sources[band in _BOLD], width, height)
    return np.array(image, dtype=np.uint8)
