"""Reading GLB files that others wrote, and refusing what is not one."""

from __future__ import annotations

import pytest
import trimesh

from exhibits.glb_read import read_glb
from server.errors import ModelError
from tests.exhibits import assets


def test_node_transforms_are_applied_when_reading_other_files() -> None:
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([0, 3, 0])
    )
    model = read_glb(bytes(scene.export(file_type="glb")))
    low, high = model.bounds()
    assert (low[1], high[1]) == pytest.approx((2.5, 3.5))


def test_garbage_is_corrupt() -> None:
    for data in (b"", b"glTF" + b"\0" * 30, assets.truncated_glb()):
        with pytest.raises(ModelError) as refused:
            read_glb(data)
        assert refused.value.code == "model.corrupt"
