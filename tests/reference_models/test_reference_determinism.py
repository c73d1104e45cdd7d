"""The same seed gives byte-identical builds: weights, tokenizers, exported programs, eval sets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from convert_model.core.hashing import sha256_file
from reference_models import BuiltReference
from reference_models.cache import MARKER

if TYPE_CHECKING:
    from tests.reference_models.conftest import SecondBuild


def _hashes(folder: Path) -> dict[str, str]:
    # The marker records build time and duration, which differ by nature.
    return {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def test_build_gives_identical_files_when_built_twice_into_different_caches(
    fast_model: str, built: Callable[[str], BuiltReference], second_build: SecondBuild
) -> None:
    first = built(fast_model)
    second_folder = second_build.folder(fast_model)
    first_hashes, second_hashes = _hashes(first.folder), _hashes(second_folder)
    assert first_hashes.keys() == second_hashes.keys()
    differing = sorted(name for name in first_hashes if first_hashes[name] != second_hashes[name])
    assert differing == [], f"{fast_model}: files differ between two builds: {differing}"
    assert any(
        name.endswith((".safetensors", ".pt2")) or first.folder / name == first.checkpoint
        for name in first_hashes
    ), "the model's weights (or tree file) were compared"
