"""The whole exhibition hall as one Model (what ``GET /hall.glb`` serves).

Owns the hall's own geometry (floor, aisle carpets in category colours, booth plinths,
back walls, name boards), the name boards' texture atlas (booth label and English title
drawn with Pillow, one PNG for every board), and placing each exhibit's model into its
booth with the transform baked into positions and normals. Parts with equal materials are
merged, so the hall is a few dozen draw calls however many booths it has; merged parts are
cut at 65,535 vertices so they keep 16-bit indices, which phones read fastest and which
make the GLB smaller. Layout (where booths are) is ``exhibits.hall``'s business.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from exhibits.catalog import Category, Exhibit
from exhibits.hall import CATEGORY_COLORS, Booth, HallLayout
from exhibits.model import F32, U32, Material, Model, Part, Texture
from exhibits.shapes import F64, I64, Vec3, crease_normals, rotate_y

FLOOR = Material("hall-floor", (0.55, 0.56, 0.58, 1.0), metallic=0.0, roughness=0.9)
PLINTH = Material("booth-plinth", (0.85, 0.85, 0.83, 1.0), metallic=0.0, roughness=0.7)
WALL = Material("booth-wall", (0.93, 0.93, 0.92, 1.0), metallic=0.0, roughness=0.85)
FRAME = Material("board-frame", (0.15, 0.16, 0.18, 1.0), metallic=0.3, roughness=0.5)

#: Name board size in metres (width, height) and the height of its lower edge.
BOARD = (1.0, 0.5)
BOARD_BOTTOM = 1.5
WALL_HEIGHT = 2.5
#: Plinths and walls stop short of the plot's edge so neighbours read as separate booths.
INSET = 0.25


def linear(hex_colour: str) -> tuple[float, float, float, float]:
    """An sRGB ``#rrggbb`` as the linear RGBA glTF factors expect."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return (r, g, b, 1.0)


def _carpet(category: Category) -> Material:
    return Material(f"aisle-{category.value}", linear(CATEGORY_COLORS[category]), roughness=0.95)


@dataclass(frozen=True, slots=True)
class Atlas:
    """The boards' texture and each booth's cell in it as (u0, v0, u1, v1), glTF UVs (v down)."""

    texture: Texture
    cells: dict[str, tuple[float, float, float, float]]


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: float,
    lines: int,
) -> list[str]:
    """Greedy word wrap to ``lines`` lines, the last one cut with an ellipsis if needed."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words and out:
        last = out[-1]
        while last and draw.textlength(last + "…", font=font) > width:
            last = last[:-1]
        out[-1] = last.rstrip() + "…"
    return out


def board_atlas(
    layout: HallLayout, exhibits: Mapping[str, Exhibit], *, atlas_px: int = 2048, max_cell_px: int = 512
) -> Atlas:
    """Draw every booth's name board into one PNG of at most ``atlas_px`` square.

    Cells keep the boards' 2:1 shape and are as large as fit, up to ``max_cell_px`` (512)
    wide; the atlas is as wide as ``atlas_px`` (2048) allows and only as tall as its rows
    need, both rounded up to powers of two for older GPUs' mipmaps.
    """
    count = max(1, len(layout.booths))
    cell_w = min(max_cell_px, atlas_px)
    while cell_w > 16 and math.ceil(count / (atlas_px // cell_w)) * (cell_w // 2) > atlas_px:
        cell_w //= 2
    cell_h, columns = cell_w // 2, atlas_px // cell_w
    rows = math.ceil(count / columns)
    if rows * cell_h > atlas_px:
        raise ValueError(f"{count} boards do not fit a {atlas_px} px atlas")
    width, height = min(atlas_px, _pow2(min(count, columns) * cell_w)), min(atlas_px, _pow2(rows * cell_h))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    label_size, title_size = max(8, cell_h * 8 // 25), max(6, cell_h // 8)
    label_font = ImageFont.load_default(size=label_size)
    title_font = ImageFont.load_default(size=title_size)
    pad, line_h = max(2, cell_h // 16), title_size * 6 // 5
    title_top = pad * 2 + label_size * 21 // 20
    # As many title lines as the cell has room for under the label.
    lines = max(1, (cell_h - pad // 2 - title_top) // line_h)
    cells: dict[str, tuple[float, float, float, float]] = {}
    for index, booth in enumerate(layout.booths):
        x0, y0 = (index % columns) * cell_w, (index // columns) * cell_h
        draw.rectangle((x0, y0, x0 + cell_w - 1, y0 + pad - 1), fill=CATEGORY_COLORS[booth.category])
        draw.text((x0 + pad * 2, y0 + pad * 2), booth.id, font=label_font, fill="#1d2330")
        exhibit = exhibits.get(booth.exhibit_id)
        if exhibit is not None:
            country_x = x0 + cell_w - pad * 2 - draw.textlength(exhibit.country, font=title_font)
            draw.text((country_x, y0 + pad * 2), exhibit.country, font=title_font, fill="#5b6270")
            title = _wrap(draw, exhibit.title_en, title_font, cell_w - pad * 4, lines)
            for k, line in enumerate(title):
                draw.text((x0 + pad * 2, y0 + title_top + k * line_h), line, font=title_font, fill="#1d2330")
        # Half a texel in from the edges so filtering never samples the next cell.
        cells[booth.id] = (
            (x0 + 0.5) / width,
            (y0 + 0.5) / height,
            (x0 + cell_w - 0.5) / width,
            (y0 + cell_h - 0.5) / height,
        )
    buffer = io.BytesIO()
    # Few colours: text on flat fills quantises without visible loss and shrinks the PNG.
    palette = image.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette.save(buffer, format="PNG")
    return Atlas(Texture(buffer.getvalue(), "image/png", width, height), cells)


def _unit_box() -> tuple[F64, F64, I64]:
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    faces += [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return crease_normals(corners, faces)


_UNIT_BOX = _unit_box()


class _Scene:
    """Triangles grouped by material as the hall is assembled."""

    def __init__(self) -> None:
        self.groups: dict[Material, list[Part]] = {}

    def add(self, part: Part) -> None:
        self.groups.setdefault(part.material, []).append(part)

    def box(self, material: Material, size: Vec3, centre: Vec3, turn: float = 0.0) -> None:
        """An axis-aligned box (before ``turn``); scaling the unit box keeps its flat normals."""
        positions, normals, indices = _UNIT_BOX
        self.add(_placed(material, positions * size, normals, indices, None, turn, centre))


def _placed(
    material: Material,
    positions: F64 | F32,
    normals: F64 | F32,
    indices: I64 | U32,
    uvs: F32 | None,
    turn: float,
    offset: Vec3,
) -> Part:
    """A part turned ``turn`` degrees about +Y and moved by ``offset`` (rotation keeps normals unit)."""
    rotation = rotate_y(turn)
    return Part(
        positions=(np.asarray(positions, dtype=np.float64) @ rotation.T + offset).astype(np.float32),
        indices=np.asarray(indices).astype(np.uint32),
        material=material,
        normals=(np.asarray(normals, dtype=np.float64) @ rotation.T).astype(np.float32),
        uvs=uvs,
    )


def _smooth_normals(part: Part) -> F64:
    """Area-weighted vertex normals for parts that arrive without any (vertex count unchanged)."""
    positions = part.positions.astype(np.float64)
    tri = positions[part.indices]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    summed = np.zeros_like(positions)
    for corner in range(3):
        np.add.at(summed, part.indices[:, corner], cross)
    length = np.linalg.norm(summed, axis=1)
    summed[length == 0] = (0.0, 1.0, 0.0)
    return summed / np.where(length == 0, 1.0, length)[:, None]


def _exhibit(scene: _Scene, booth: Booth, model: Model) -> None:
    """Put a normalised model (on y = 0, centred) into its booth, shrunk if it overhangs."""
    (x0, _, z0), (x1, _, z1) = model.bounds()
    room = min(booth.footprint) - 2 * INSET
    reach = 2 * max(abs(x0), abs(x1), abs(z0), abs(z1))  # any turn keeps it inside this square
    scale = min(1.0, room / reach) if reach > 0 else 1.0
    for part in model.parts:
        normals = part.normals if part.normals is not None else _smooth_normals(part)
        scaled = part.positions.astype(np.float64) * scale
        scene.add(
            _placed(part.material, scaled, normals, part.indices, part.uvs, booth.rotation_y, booth.position)
        )


def _booth_furniture(scene: _Scene, booth: Booth, atlas: Atlas, board: Material, height: float) -> None:
    """The plinth, the back wall with its category band, and the name board on its post."""
    w, d = booth.footprint
    x, _, z = booth.position
    turn = booth.rotation_y

    def at(lx: float, ly: float, lz: float) -> Vec3:
        px, py, pz = rotate_y(turn) @ (lx, ly, lz)
        return (float(px + x), float(py), float(pz + z))

    scene.box(PLINTH, (w - 2 * INSET, height, d - 2 * INSET), at(0.0, height / 2, 0.0), turn)
    back = -d / 2 + 0.05
    scene.box(WALL, (w - 2 * INSET, WALL_HEIGHT, 0.1), at(0.0, WALL_HEIGHT / 2, back), turn)
    scene.box(_carpet(booth.category), (w - 2 * INSET, 0.2, 0.12), at(0.0, WALL_HEIGHT + 0.1, back), turn)
    # The name board stands on a post at the aisle corner on the visitor's right.
    bx, bz = w / 2 - INSET - BOARD[0] / 2, d / 2 - INSET
    top = BOARD_BOTTOM + BOARD[1]
    scene.box(FRAME, (0.06, top, 0.06), at(bx, top / 2, bz - 0.06), turn)
    scene.box(
        FRAME, (BOARD[0] + 0.06, BOARD[1] + 0.06, 0.04), at(bx, BOARD_BOTTOM + BOARD[1] / 2, bz - 0.02), turn
    )
    u0, v0, u1, v1 = atlas.cells[booth.id]
    hw = BOARD[0] / 2
    # 5 mm proud of the frame: less would flicker against it from across the hall on a
    # phone's 24-bit depth buffer.
    front = bz + 0.005
    quad = np.array([[bx - hw, BOARD_BOTTOM, front], [bx + hw, BOARD_BOTTOM, front], [bx + hw, top, front]])
    quad = np.vstack([quad, [bx - hw, top, front]])
    uvs = np.array([[u0, v1], [u1, v1], [u1, v0], [u0, v0]], dtype=np.float32)
    normals = np.tile([0.0, 0.0, 1.0], (4, 1))
    scene.add(_placed(board, quad, normals, np.array([[0, 1, 2], [0, 2, 3]]), uvs, turn, (x, 0.0, z)))


def _merge(material: Material, parts: list[Part], max_vertices: int) -> list[Part]:
    """Concatenate same-material parts into as few parts as stay under ``max_vertices``."""
    textured = material.base_color_texture is not None
    chunks: list[list[Part]] = [[]]
    count = 0
    for part in parts:
        if chunks[-1] and count + part.vertices > max_vertices:
            chunks.append([])
            count = 0
        chunks[-1].append(part)
        count += part.vertices
    merged: list[Part] = []
    for chunk in chunks:
        offsets = np.cumsum([0] + [p.vertices for p in chunk[:-1]])
        indices = [p.indices.astype(np.uint32) + np.uint32(o) for p, o in zip(chunk, offsets, strict=True)]
        uvs = None
        if textured:  # a textured material needs UVs everywhere; parts without them get (0, 0)
            uvs = np.concatenate(
                [p.uvs if p.uvs is not None else np.zeros((p.vertices, 2), np.float32) for p in chunk]
            )
        merged.append(
            Part(
                positions=np.concatenate([p.positions for p in chunk]).astype(np.float32),
                indices=np.concatenate(indices),
                material=material,
                # Every part in the scene got normals when it was placed.
                normals=np.concatenate([p.normals for p in chunk if p.normals is not None]),
                uvs=None if uvs is None else uvs.astype(np.float32),
                name=f"{material.name}-{len(merged)}" if len(chunks) > 1 else material.name,
            )
        )
    return merged


def hall_model(
    layout: HallLayout,
    exhibits: Mapping[str, Exhibit],
    models: Mapping[str, Model],
    *,
    atlas_px: int = 2048,
    max_part_vertices: int = 65535,
) -> Model:
    """The hall with every booth and every exhibit's model (keyed by exhibit id) in place.

    Exhibits without a model still get their plinth, wall and board. ``atlas_px`` (2048)
    bounds the boards' texture; ``max_part_vertices`` (65,535) is where merged parts are
    cut to keep 16-bit indices.
    """
    scene = _Scene()
    width, depth = layout.size
    scene.box(FLOOR, (width, 0.1, depth), (0.0, -0.05, 0.0))
    for aisle in layout.aisles:
        x0, z0, x1, z1 = aisle.rect
        # A hair above the floor so the carpet never fights the floor for depth.
        scene.box(_carpet(aisle.category), (x1 - x0, 0.01, z1 - z0), ((x0 + x1) / 2, 0.005, (z0 + z1) / 2))
    atlas = board_atlas(layout, exhibits, atlas_px=atlas_px)
    board = Material("name-boards", (1.0, 1.0, 1.0, 1.0), roughness=0.9, base_color_texture=atlas.texture)
    for booth in layout.booths:
        _booth_furniture(scene, booth, atlas, board, layout.plinth)
    for booth in layout.booths:
        model = models.get(booth.exhibit_id)
        if model is not None:
            _exhibit(scene, booth, model)
    parts: list[Part] = []
    for material, group in scene.groups.items():
        parts += _merge(material, group, max_part_vertices)
    return Model(parts=parts)
