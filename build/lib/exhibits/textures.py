"""Texture images of the ingest pipeline: encoding, the per-level size caps, their weight.

Loaders hand over decoded Pillow images; :func:`encode_image` turns each into a
:class:`~exhibits.model.Texture` (PNG, or JPEG when the source was a JPEG without alpha,
so photographs stay small). :func:`cap_textures` gives a model whose textures fit in
``max_px`` on their longest side, for one level of detail; every level is resized from the
source image rather than from the level above, so small levels are not blurred twice.
Pillow is imported when first used: the server imports this module but never resizes.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from exhibits.model import Material, Model, Part, Texture
from server.errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

#: Quality of re-encoded JPEGs: visually lossless for base colour, a third of PNG's size.
JPEG_QUALITY = 90
#: Decoded pixel count above which an image is refused (a decompression bomb in a PNG).
MAX_PIXELS = 8192 * 8192


def encode_image(image: Image.Image, *, prefer_jpeg: bool | None = None) -> Texture:
    """Encode ``image`` for a GLB. JPEG when ``prefer_jpeg`` (default: the image was one)
    and there is no alpha channel, PNG otherwise."""
    if prefer_jpeg is None:
        prefer_jpeg = image.format == "JPEG"
    image = _web_mode(image)
    out = io.BytesIO()
    if prefer_jpeg and image.mode in ("RGB", "L"):
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        return Texture(out.getvalue(), "image/jpeg", image.width, image.height)
    image.save(out, format="PNG", optimize=False)
    return Texture(out.getvalue(), "image/png", image.width, image.height)


def decode(texture: Texture) -> Image.Image:
    """The decoded image of ``texture`` (``model.corrupt`` if it is not a readable image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb thresholds; a bomb is refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(texture.data))
        if image.width * image.height > MAX_PIXELS:
            raise ModelError(
                "model.corrupt", f"a texture of {image.width}x{image.height} pixels is too large"
            )
        image.load()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ModelError("model.corrupt", f"a texture is not a readable image ({exc})") from None
    return image


def cap_texture(texture: Texture, max_px: int) -> Texture:
    """``texture`` scaled down (aspect kept, Lanczos) to fit ``max_px``; itself if it fits."""
    longest = max(texture.width, texture.height)
    if longest <= max_px:
        return texture
    return _resized(_web_mode(decode(texture)), texture, max_px)


def _resized(image: Image.Image, texture: Texture, max_px: int) -> Texture:
    """``image``, the decoded ``texture``, scaled down to fit ``max_px`` and encoded."""
    from PIL import Image

    scale = max_px / max(texture.width, texture.height)
    size = (max(1, round(texture.width * scale)), max(1, round(texture.height * scale)))
    resized = image.resize(size, Image.Resampling.LANCZOS)
    return encode_image(resized, prefer_jpeg=texture.mime == "image/jpeg")


def cap_each(textures: Iterable[Texture], sizes: Iterable[int]) -> dict[int, dict[Texture, Texture]]:
    """For each size in ``sizes``, each of ``textures`` capped to it (as :func:`cap_texture`),
    each source decoded once. Pillow releases the GIL while it decodes, resizes and encodes,
    so the pipeline runs this in a thread while it decimates."""
    wanted = sorted(set(sizes))
    out: dict[int, dict[Texture, Texture]] = {px: {} for px in wanted}
    for texture in textures:
        image = None
        for px in wanted:
            if max(texture.width, texture.height) <= px:
                out[px][texture] = texture
                continue
            image = image if image is not None else _web_mode(decode(texture))
            out[px][texture] = _resized(image, texture, px)
    return out


def cap_textures(model: Model, max_px: int, capped: Mapping[Texture, Texture] | None = None) -> Model:
    """A model sharing ``model``'s geometry whose textures all fit in ``max_px``.

    A texture used by several materials is resized once; ``capped`` holds resized textures
    already made (from :func:`cap_each`).
    """
    done: dict[Texture, Texture] = dict(capped or {})
    parts: list[Part] = []
    for part in model.parts:
        texture = part.material.base_color_texture
        material: Material = part.material
        if texture is not None:
            if texture not in done:
                done[texture] = cap_texture(texture, max_px)
            material = replace(material, base_color_texture=done[texture])
        parts.append(
            Part(
                positions=part.positions,
                indices=part.indices,
                material=material,
                normals=part.normals,
                uvs=part.uvs,
                name=part.name,
            )
        )
    return Model(parts)


def texture_stats(model: Model) -> tuple[int, int]:
    """(encoded bytes of the distinct textures, longest side in pixels of the largest)."""
    textures = {p.material.base_color_texture for p in model.parts} - {None}
    size = sum(len(t.data) for t in textures if t is not None)
    px = max((max(t.width, t.height) for t in textures if t is not None), default=0)
    return size, px


def _web_mode(image: Image.Image) -> Image.Image:
    """The image in a mode PNG/JPEG decoders in browsers all read (8-bit L, LA, RGB, RGBA)."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: scale to 8 bits by the range actually used.
        low, high = cast(tuple[float, float], image.getextrema())
        span = (high - low) or 1
        return image.point(lambda v: (v - low) * 255 / span).convert("L")
    if image.mode == "PA":
        return image.convert("RGBA")
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")
