"""The slate picture (server/live/slate_card.py): the fixed layout, lines kept inside their
bands and the margins, and characters a font lacks left out rather than drawn as boxes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from server.live.slate_card import (
    ACCENT,
    BACKGROUND,
    BANDS,
    CJK_FONT_PACKAGE,
    MARGIN,
    SlateCard,
    cjk_font,
    drawable,
    font_warning,
    render_card,
)

CARD = SlateCard(
    title_zh="主论坛",
    title_en="Main Forum",
    next_line="Next · 下一场: Keynote by Lord Stern — 14:00 (Asia/Shanghai)",
    event_title="2020 Green Development City Summit",
)


def rows(band: str, height: int) -> slice:
    top, bottom = BANDS[band]
    return slice(round(top * height), round(bottom * height))


def test_next_line_changes_only_its_band() -> None:
    width, height = 640, 360
    one = render_card(CARD, width, height)
    other = render_card(dataclasses.replace(CARD, next_line="Next: Closing remarks — 17:30"), width, height)
    without = render_card(dataclasses.replace(CARD, next_line=None), width, height)
    assert one.shape == (height, width, 3) and one.dtype == np.uint8
    band = rows("next", height)
    changed = np.flatnonzero(np.any(one != other, axis=(1, 2)))
    assert changed.size > 0
    assert band.start <= changed.min() and changed.max() < band.stop
    assert (without[band] == BACKGROUND).all()  # no next line: an empty band
    title = rows("title", height)
    assert np.array_equal(one[title], other[title])


def test_footer_and_title_are_drawn() -> None:
    width, height = 640, 360
    picture = render_card(CARD, width, height)
    for band in ("title", "next", "footer"):
        assert not (picture[rows(band, height)] == BACKGROUND).all(), band
    blank = render_card(SlateCard("", "", None), width, height)
    outside_accent = np.ones(height, dtype=bool)
    outside_accent[round(ACCENT[0] * height) : round(ACCENT[1] * height) + 1] = False
    assert (blank[outside_accent] == BACKGROUND).all()


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (320, 180), (640, 480)])
def test_very_long_lines_stay_inside_the_margins_and_their_bands(width: int, height: int) -> None:
    long = SlateCard(
        title_zh="第八届深圳国际低碳城论坛暨二〇二〇绿色发展城市峰会主论坛开幕式与高层对话" * 2,
        title_en="The Eighth Shenzhen International Low Carbon City Forum: Opening Plenary " * 4,
        next_line="Next · 下一场: " + "A very long session title " * 10 + "— 14:00 (Asia/Shanghai)",
        event_title="2020 Green Development City Summit " * 10,
    )
    picture = render_card(long, width, height)
    margin = int(MARGIN * width)
    assert (picture[:, :margin] == BACKGROUND).all()
    assert (picture[:, width - margin :] == BACKGROUND).all()
    inked = np.ones(height, dtype=bool)  # rows that may hold ink: the bands and the accent rule
    for top, bottom in [*BANDS.values(), ACCENT[:2]]:
        inked[round(top * height) : round(bottom * height) + 1] = False
    assert (picture[inked] == BACKGROUND).all()
    # The lines were shortened to fit, not dropped: ink reaches close to both margins.
    ink = np.flatnonzero(np.any(picture[rows("next", height)] != BACKGROUND, axis=(0, 2)))
    assert ink.min() < margin + width * 0.05 and ink.max() > width - margin - width * 0.05


def test_chinese_title_is_drawn_or_left_out_never_boxes() -> None:
    with_zh = render_card(CARD, 640, 360)
    without_zh = render_card(SlateCard("", CARD.title_en, CARD.next_line, CARD.event_title), 640, 360)
    if cjk_font() is None:
        assert np.array_equal(with_zh, without_zh)  # the English title alone, as if there were none
    else:
        assert not np.array_equal(with_zh[rows("title_zh", 360)], without_zh[rows("title_zh", 360)])


def test_chinese_glyphs_are_drawn_with_the_installed_cjk_font() -> None:
    found = cjk_font()
    assert found is not None, f"no CJK font: install Debian's {CJK_FONT_PACKAGE} (the test command does)"
    assert font_warning(found) is None
    height, width = 360, 640
    band = rows("title_zh", height)
    title = render_card(CARD, width, height)[band]
    without = render_card(dataclasses.replace(CARD, title_zh=""), width, height)[band]
    inked = np.any(title != BACKGROUND, axis=2)
    assert inked.sum() > 400  # three characters of real strokes, not a blank band
    assert not inked[:, : width // 3].any() and not inked[:, -width // 3 :].any()  # centred
    assert not np.array_equal(title, without)
    # every character has its own glyph: 主论坛 draws three different shapes, not one box thrice
    glyphs = [render_card(dataclasses.replace(CARD, title_zh=c), width, height)[band] for c in "主论坛"]
    assert all(np.any(g != BACKGROUND) for g in glyphs)
    assert len({g.tobytes() for g in glyphs}) == 3
    boxes = render_card(dataclasses.replace(CARD, title_zh="\uffff"), width, height)[band]
    assert all(not np.array_equal(g, boxes) for g in glyphs)


def test_font_warning_names_the_package_to_install() -> None:
    warning = font_warning(None)
    assert warning is not None and "apt-get install fonts-noto-cjk" in warning
    assert "Chinese" in warning


def test_characters_a_font_lacks_are_left_out_with_their_separators() -> None:
    builtin = None  # Pillow's own font: Latin only
    assert drawable("Next · 下一场: Keynote by Lord Stern", builtin) == "Next: Keynote by Lord Stern"
    assert drawable("下一场 / Next：Keynote（主会场）", builtin) == "Next: Keynote"
    assert drawable("主论坛", builtin) == ""
    assert drawable("Main Forum", builtin) == "Main Forum"  # nothing missing: untouched
