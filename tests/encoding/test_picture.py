"""The test pattern's picture: font, clock text, sweep, flash and beep (pure numpy, no encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from server.encoding.picture import (
    FLASH_SECONDS,
    FONT,
    GLYPH_HEIGHT,
    PatternPainter,
    beep,
    clock_text,
    stamp,
    text_mask,
    text_width,
)

T0 = 1_607_238_000.0  # 2020-12-06 07:00:00 UTC, the summit's first morning


def test_every_glyph_is_distinct() -> None:
    shapes = {glyph.tobytes() for char, glyph in FONT.items() if char != " "}
    assert len(shapes) == len(FONT) - 1


def test_text_mask_size_and_spacing() -> None:
    mask = text_mask("12:34", scale=3)
    assert mask.shape == (GLYPH_HEIGHT * 3, text_width(5, 3))
    # The blank column between glyphs is blank at every scale.
    assert not mask[:, 5 * 3 : 6 * 3].any()


def test_lower_case_is_upper_case_and_unknown_is_a_question_mark() -> None:
    assert np.array_equal(text_mask("stern-uk"), text_mask("STERN-UK"))
    assert np.array_equal(text_mask("é"), text_mask("?"))


def test_clock_text_truncates_milliseconds() -> None:
    assert clock_text(T0) == "07:00:00.000"
    assert clock_text(T0 + 0.9996) == "07:00:00.999"
    assert clock_text(T0 + 3600 + 61.25) == "08:01:01.250"


def test_stamp_clips_at_the_edges() -> None:
    canvas = np.zeros((10, 10, 3), dtype=np.uint8)
    stamp(canvas, np.ones((4, 4), dtype=np.bool_), 8, -2, (255, 0, 0))
    assert canvas[:2, 8:, 0].all()
    assert canvas[:, :8].sum() == 0
    assert canvas[2:].sum() == 0


def test_painter_refuses_odd_sizes() -> None:
    with pytest.raises(ValueError, match="even"):
        PatternPainter("X", 641, 360)


def _clock_band(painter: PatternPainter, image: np.ndarray) -> np.ndarray:
    height = GLYPH_HEIGHT * painter.clock_scale
    top = (painter.height - height) // 2
    return image[top : top + height, :, 0]


def test_clock_changes_with_the_time_and_matches_the_font() -> None:
    painter = PatternPainter("STERN-UK", 640, 360, busy=False)
    first = painter.paint(T0 + 0.5)
    later = painter.paint(T0 + 1.5)
    band = _clock_band(painter, first)
    assert not np.array_equal(band, _clock_band(painter, later))
    # The band holds exactly the font's ink for the clock text (the sweep is elsewhere at .5).
    expected = text_mask(clock_text(T0 + 0.5), painter.clock_scale)
    left = (640 - expected.shape[1]) // 2
    assert np.array_equal(band[:, left : left + expected.shape[1]] == 255, expected)


def test_sweep_and_flash_follow_the_second() -> None:
    painter = PatternPainter("A", 640, 360, busy=False)
    at_top = painter.paint(T0 + 0.02)
    halfway = painter.paint(T0 + 0.5)
    row = 300  # in the grey ramp, below the clock band
    white_top = np.flatnonzero((at_top[row] == 255).all(axis=1))
    white_half = np.flatnonzero((halfway[row] == 255).all(axis=1))
    assert white_top.max() < 40 < 300 < white_half.min() < 340
    corner = (2, 637)
    assert (at_top[corner] == 255).all()
    assert (halfway[corner] == 0).all()


def test_busy_strip_changes_every_frame() -> None:
    painter = PatternPainter("A", 320, 180, busy=True)
    one, two = painter.paint(T0 + 0.5), painter.paint(T0 + 0.5)
    assert not np.array_equal(one[-20:], two[-20:])
    assert np.array_equal(one[:100], two[:100])


def test_beep_sounds_only_at_the_top_of_the_second() -> None:
    times = T0 + np.arange(48_000, dtype=np.float64) / 48_000
    samples = beep(times)
    on = int(FLASH_SECONDS * 48_000)
    assert samples.dtype == np.float32
    assert np.abs(samples[: on - 1]).max() > 0.45
    assert not samples[on + 1 :].any()
