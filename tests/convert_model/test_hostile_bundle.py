"""Tampered bundles: verify catches a changed byte in any file, any added file, manifest
paths that leave the bundle, a changed manifest (digest, and signature with --key)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from convert_model import cli, serving
from convert_model.bundle.verify import verify
from tests.convert_model.hostile import Case, assert_refused, snapshot
from tests.fixtures.models import Zoo

KEY = b"k" * 32


@pytest.fixture(scope="module")
def signed_bundle(model_zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small bundle (torch.export MLP, fp32, no sweep), signed with KEY."""
    root = tmp_path_factory.mktemp("bundle")
    key = root / "key"
    key.write_bytes(KEY)
    out = root / "b"
    code = cli.main([str(model_zoo.custom_pt2), "--out", str(out), "--precision", "fp32",
                     "--sweep", "off", "--sign", str(key), "-q"])
    assert code == 0
    return out


@pytest.fixture
def bundle(signed_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed_bundle, tmp_path / "b", symlinks=True))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _reseal(bundle: Path, manifest: dict) -> None:
    """Rewrite manifest.json and its digest, as someone editing the bundle would."""
    data = (json.dumps(manifest, indent=2) + "\n").encode()
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_verify_holds_for_the_untouched_signed_bundle(bundle: Path) -> None:
    result = verify(bundle, KEY)
    assert result.ok, result.problems
    assert {"manifest.json", "manifest.sha256", "manifest.sig"} <= set(_files(bundle))


SERVING_FILES = tuple(  # the predictor, copied from its package
    f"serving/{p.name}" for p in sorted((Path(serving.__file__).parent).glob("*.py"))
)
BUNDLE_FILES = (
    "Dockerfile", "MODEL_CARD.md", "inference_service.yaml", "manifest.json",
    "manifest.sha256", "manifest.sig", "model.onnx", "plots/parity.png",
    "reference_outputs.npz", "report.html", "report.json", "report.md", "sample_inputs.npz",
    *SERVING_FILES, "triton/tiny-tagger/1/model.onnx", "triton/tiny-tagger/config.pbtxt",
)


def test_bundle_files_are_the_ones_the_byte_test_covers(signed_bundle: Path) -> None:
    assert tuple(_files(signed_bundle)) == BUNDLE_FILES


@pytest.mark.parametrize("name", BUNDLE_FILES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_verify_catches_one_changed_byte_in_every_file(bundle: Path, name: str,
                                                        where: str) -> None:
    data = bytearray((bundle / name).read_bytes())
    index = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[index] ^= 0x01
    (bundle / name).write_bytes(bytes(data))
    result = verify(bundle, KEY)
    assert not result.ok, f"a changed byte in {name} passed verify"
    assert any(name in p or "manifest" in p for p in result.problems), result.problems


@pytest.mark.parametrize("added", ["extra.txt", "serving/extra.py", "__pycache__/x.pyc",
                                   "runtime/__pycache__/graphs.cpython-311.pyc", ".hidden"])
def test_verify_catches_an_added_file(bundle: Path, added: str) -> None:
    (bundle / added).parent.mkdir(parents=True, exist_ok=True)
    (bundle / added).write_bytes(b"\x00planted")
    problems = verify(bundle, KEY).problems
    assert f"{added}: not listed in the manifest" in problems


def test_verify_catches_an_added_symlink(bundle: Path) -> None:
    os.symlink("/etc/passwd", bundle / "passwd")
    assert "passwd: a symbolic link, not listed in the manifest" in verify(bundle).problems


def test_verify_catches_a_resealed_manifest_edit_with_the_key(bundle: Path) -> None:
    manifest = _manifest(bundle)
    manifest["variants"][0]["budget"]["min_cosine"] = 0.0
    manifest["source"]["path"] = "/somewhere/else"
    _reseal(bundle, manifest)
    assert verify(bundle).ok  # the digest alone guards against edits, not against a forger
    problems = verify(bundle, KEY).problems
    assert problems and "manifest.sig: the signature does not match" in problems[0]


def test_verify_with_a_key_refuses_an_unsigned_bundle(bundle: Path) -> None:
    (bundle / "manifest.sig").unlink()
    assert "manifest.sig: missing; the bundle is not signed" in verify(bundle, KEY).problems


def test_verify_catches_a_missing_digest(bundle: Path) -> None:
    (bundle / "manifest.sha256").unlink()
    assert any("manifest.sha256: missing" in p for p in verify(bundle).problems)


@pytest.mark.parametrize("where", ["files", "variant", "sample_inputs"])
@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.onnx", "a/../../outside.onnx"])
def test_verify_refuses_manifest_paths_that_leave_the_bundle(bundle: Path, where: str,
                                                             path: str) -> None:
    outside = bundle.parent / "outside.onnx"
    shutil.copy(bundle / "model.onnx", outside)
    manifest = _manifest(bundle)
    if where == "files":
        manifest["files"][path] = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    elif where == "variant":
        manifest["variants"][0]["file"] = path
        manifest["files"][path] = manifest["files"]["model.onnx"]
    else:
        manifest["sample_inputs"] = path
    _reseal(bundle, manifest)
    before = snapshot(bundle)
    result = verify(bundle)
    assert not result.ok
    assert any(path in p and ("leaves" in p or "not a plain" in p) for p in result.problems)
    assert snapshot(bundle) == before


def test_verify_of_a_manifest_whose_files_is_a_list_is_one_line(bundle: Path, tmp_path: Path,
                                                                capsys) -> None:
    manifest = _manifest(bundle)
    manifest["files"] = list(manifest["files"])
    _reseal(bundle, manifest)
    assert_refused(Case(args=["verify", str(bundle)], needles=[
        f"bundle {bundle} corrupt", "'files' must be an object", "list"]), tmp_path, capsys)


def test_verify_with_a_short_key_is_one_line(bundle: Path, tmp_path: Path, capsys) -> None:
    key = tmp_path / "short.key"
    key.write_bytes(b"abc")
    assert_refused(Case(args=["verify", str(bundle), "--key", str(key)],
                        needles=[str(key), "at least 16 bytes"]), tmp_path, capsys)


def test_verify_writes_nothing_into_the_bundle(bundle: Path) -> None:
    before = snapshot(bundle)
    assert verify(bundle, KEY).ok
    assert snapshot(bundle) == before
