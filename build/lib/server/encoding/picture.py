"""The test pattern's picture: colour bars, a sweeping bar, a big wall clock and a label.

Pure numpy, no font files: text is drawn with a built-in 5x7 bitmap font (digits, upper-case
letters, ``-``, ``:``, ``.``), scaled by whole pixels so it survives heavy compression.
Everything a viewer needs to judge a live stream is visible in one frame:

- the clock (``HH:MM:SS.mmm``, UTC) is the frame's wall-clock time, so comparing it with a
  clock next to the player gives the glass-to-glass delay by eye;
- the bar sweeps across once a second and starts at the left edge at the top of every
  second, exactly when the beep starts and the corner square flashes — A/V sync at a glance;
- the label says which input this is, because a producer's multiview shows many of them.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import numpy.typing as npt

RGB = tuple[int, int, int]
Image = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

#: Seconds of beep (and white flash) at the top of every second.
FLASH_SECONDS = 0.1

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7

# One glyph per line: the character, then its seven rows from the top ("#" is ink).
_FONT_TABLE = """
0 .###. #...# #..## #.#.# ##..# #...# .###.
1 ..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.
2 .###. #...# ....# ...#. ..#.. .#... #####
3 ####. ....# ....# .###. ....# ....# ####.
4 ...#. ..##. .#.#. #..#. ##### ...#. ...#.
5 ##### #.... ####. ....# ....# #...# .###.
6 ..##. .#... #.... ####. #...# #...# .###.
7 ##### ....# ...#. ..#.. .#... .#... .#...
8 .###. #...# #...# .###. #...# #...# .###.
9 .###. #...# #...# .#### ....# ...#. .##..
A .###. #...# #...# ##### #...# #...# #...#
B ####. #...# #...# ####. #...# #...# ####.
C .###. #...# #.... #.... #.... #...# .###.
D ####. #...# #...# #...# #...# #...# ####.
E ##### #.... #.... ####. #.... #.... #####
F ##### #.... #.... ####. #.... #.... #....
G .###. #...# #.... #.### #...# #...# .####
H #...# #...# #...# ##### #...# #...# #...#
I .###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.
J ..### ...#. ...#. ...#. ...#. #..#. .##..
K #...# #..#. #.#.. ##... #.#.. #..#. #...#
L #.... #.... #.... #.... #.... #.... #####
M #...# ##.## #.#.# #.#.# #...# #...# #...#
N #...# #...# ##..# #.#.# #..## #...# #...#
O .###. #...# #...# #...# #...# #...# .###.
P ####. #...# #...# ####. #.... #.... #....
Q .###. #...# #...# #...# #.#.# #..#. .##.#
R ####. #...# #...# ####. #.#.. #..#. #...#
S .#### #.... #.... .###. ....# ....# ####.
T ##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..
U #...# #...# #...# #...# #...# #...# .###.
V #...# #...# #...# #...# #...# .#.#. ..#..
W #...# #...# #...# #.#.# #.#.# #.#.# .#.#.
X #...# #...# .#.#. ..#.. .#.#. #...# #...#
Y #...# #...# .#.#. ..#.. ..#.. ..#.. ..#..
Z ##### ....# ...#. ..#.. .#... #.... #####
- ..... ..... ..... .###. ..... ..... .....
: ..... .##.. .##.. ..... .##.. .##.. .....
. ..... ..... ..... ..... ..... .##.. .##..
? .###. #...# ....# ...#. ..#.. ..... ..#..
"""


def _load_font(table: str) -> dict[str, Mask]:
    font: dict[str, Mask] = {" ": np.zeros((GLYPH_HEIGHT, GLYPH_WIDTH), dtype=np.bool_)}
    for line in table.strip().splitlines():
        char, *rows = line.split()
        assert len(rows) == GLYPH_HEIGHT and all(len(row) == GLYPH_WIDTH for row in rows), char
        font[char] = np.array([[cell == "#" for cell in row] for row in rows], dtype=np.bool_)
    return font


FONT = _load_font(_FONT_TABLE)


def text_mask(text: str, scale: int = 1) -> Mask:
    """``text`` as ink (True) on paper, one blank column between glyphs, every pixel ``scale``-fold.

    Lower case is drawn upper case; characters the font lacks are drawn as ``?`` so a label
    never silently loses a character.
    """
    if not text:
        return np.zeros((GLYPH_HEIGHT * scale, 0), dtype=np.bool_)
    spacer = np.zeros((GLYPH_HEIGHT, 1), dtype=np.bool_)
    columns: list[Mask] = []
    for index, char in enumerate(text.upper()):
        if index:
            columns.append(spacer)
        columns.append(FONT.get(char, FONT["?"]))
    mask: Mask = np.hstack(columns)
    return mask.repeat(scale, axis=0).repeat(scale, axis=1)


def text_width(length: int, scale: int) -> int:
    """Pixels taken by ``length`` characters at ``scale``."""
    return max(0, length * (GLYPH_WIDTH + 1) - 1) * scale


def stamp(canvas: Image, mask: Mask, x: int, y: int, color: RGB) -> None:
    """Paint ``mask``'s ink onto ``canvas`` at (x, y), clipped to the canvas."""
    height, width = canvas.shape[:2]
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + mask.shape[0], height), min(x + mask.shape[1], width)
    if top >= bottom or left >= right:
        return
    region = mask[top - y : bottom - y, left - x : right - x]
    canvas[top:bottom, left:right][region] = color


def clock_text(wall_time: float) -> str:
    """``HH:MM:SS.mmm`` in UTC (truncated, not rounded, so the seconds turn with the beep)."""
    millis = int(wall_time * 1000) % 1000
    return time.strftime("%H:%M:%S", time.gmtime(int(wall_time))) + f".{millis:03d}"


# 75% colour bars, the classic order: white, yellow, cyan, green, magenta, red, blue.
_BARS: tuple[RGB, ...] = (
    (191, 191, 191),
    (191, 191, 0),
    (0, 191, 191),
    (0, 191, 0),
    (191, 0, 191),
    (191, 0, 0),
    (0, 0, 191),
)


@lru_cache(maxsize=4)
def _background(width: int, height: int) -> Image:
    """The static layer: colour bars above a grey ramp (cached: it never changes)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    bar_bottom = height * 2 // 3
    edges = np.linspace(0, width, len(_BARS) + 1).astype(int)
    for color, left, right in zip(_BARS, edges[:-1], edges[1:], strict=True):
        image[:bar_bottom, left:right] = color
    ramp = np.linspace(16, 235, width).astype(np.uint8)
    image[bar_bottom:, :, :] = ramp[np.newaxis, :, np.newaxis]
    image.flags.writeable = False
    return image


class PatternPainter:
    """Draws frames of one size for one label; :meth:`paint` is called once per frame.

    With ``busy`` the bottom of the picture is a strip of random blocks, new in every frame:
    nothing an encoder can predict, so the stream uses its whole bitrate the way a camera
    picture does (a clean pattern alone compresses to a few percent of it, which would make
    load tests far too kind to the server).
    """

    def __init__(self, label: str, width: int, height: int, *, busy: bool = True) -> None:
        if width < 64 or height < 64 or width % 2 or height % 2:
            raise ValueError(f"picture size must be even and at least 64x64, not {width}x{height}")
        self.width = width
        self.height = height
        # Twelve clock glyphs fill at most 90% of the width; the label is half that size.
        self.clock_scale = max(1, min(int(width * 0.9) // text_width(12, 1), height // (GLYPH_HEIGHT * 5)))
        self.label_scale = max(1, self.clock_scale // 2)
        fits = max(1, (width - 2 * self.label_scale) // ((GLYPH_WIDTH + 1) * self.label_scale))
        self.label = text_mask(label[:fits], self.label_scale)
        self.utc = text_mask("UTC", self.label_scale)
        self.busy = busy
        self._noise = np.random.default_rng(0x5EED)  # seeded: the same frames on every run

    def paint(self, wall_time: float) -> Image:
        """The frame shown at ``wall_time`` (seconds since the epoch) as an RGB array."""
        width, height = self.width, self.height
        image = _background(width, height).copy()
        phase = wall_time % 1.0
        if self.busy:
            self._paint_noise(image)

        # The sweeping bar: at the left edge when the second turns, so it meets the beep.
        bar = max(2, width // 80)
        x = int(phase * (width - bar))
        image[:, x : x + bar] = (255, 255, 255)

        # The clock on a black band across the middle.
        clock = text_mask(clock_text(wall_time), self.clock_scale)
        pad = self.clock_scale * 2
        band_top = (height - clock.shape[0]) // 2 - pad
        image[band_top : band_top + clock.shape[0] + 2 * pad, :] = 0
        stamp(image, clock, (width - clock.shape[1]) // 2, band_top + pad, (255, 255, 255))
        utc_x = (width + clock.shape[1]) // 2 - self.utc.shape[1]
        utc_y = band_top + clock.shape[0] + 2 * pad
        image[
            utc_y : utc_y + self.utc.shape[0] + 2 * self.label_scale, utc_x - pad : utc_x + self.utc.shape[1]
        ] = 0
        stamp(image, self.utc, utc_x, utc_y + self.label_scale, (255, 255, 255))

        # The label on black at the top left, the flash square at the top right.
        margin = self.label_scale * 2
        label_band = self.label.shape[0] + 2 * margin
        image[:label_band, : self.label.shape[1] + 2 * margin] = 0
        stamp(image, self.label, margin, margin, (255, 255, 255))
        image[:label_band, width - label_band :] = 255 if phase < FLASH_SECONDS else 0
        return image

    def _paint_noise(self, image: Image) -> None:
        block = 8
        top = self.height - self.height // 6
        rows, cols = (self.height - top) // block, self.width // block
        levels = self._noise.integers(16, 236, size=(rows, cols), dtype=np.uint8)
        strip = levels.repeat(block, axis=0).repeat(block, axis=1)
        image[top : top + strip.shape[0], : strip.shape[1]] = strip[:, :, np.newaxis]


def beep(sample_times: npt.NDArray[np.float64], *, frequency: float = 1000.0) -> npt.NDArray[np.float32]:
    """Mono samples in [-0.5, 0.5] for the given wall times: a tone in the first
    :data:`FLASH_SECONDS` of every second, silence otherwise.

    ``sample_times`` are seconds since the epoch; the tone's phase uses only the fraction
    of the second, because ``sin`` of ~1.8e9 * 2π loses the precision a clean tone needs.
    """
    phase = np.mod(sample_times, 1.0)
    tone = 0.5 * np.sin(2 * np.pi * frequency * phase)
    return np.where(phase < FLASH_SECONDS, tone, 0.0).astype(np.float32)
