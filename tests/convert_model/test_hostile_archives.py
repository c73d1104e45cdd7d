"""Hostile archives: a ``.pt2`` whose pickled members would run code, zip tricks, and a
``.pt2`` in disguise passed as a state_dict."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from tests.convert_model.hostile import Case, assert_refused, payload, registry
from tests.fixtures.models import CUSTOM_SPEC, Zoo

CASES, case = registry()


class _Payload:
    """Unpickling this runs ``exec(source)``, as a hostile pickle would."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return (exec, (self.source,))


def _pickled(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes],
             add: dict[str, bytes] | None = None) -> Path:
    """Copy the zip ``src`` to ``dst`` with members (matched by name suffix) replaced."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        top = old.namelist()[0].split("/", 1)[0]
        for info in old.infolist():
            data = old.read(info.filename)
            for suffix, value in replace.items():
                if info.filename.endswith(suffix):
                    data = value
            new.writestr(info, data)
        for name, value in (add or {}).items():
            new.writestr(f"{top}/{name}", value)
    return dst


@case("pt2 sample inputs that run code")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    inputs = (_Payload(payload(marker)), zoo.custom_inputs())
    p = _rewrite(zoo.custom_pt2, tmp / "model.pt2", {"sample_inputs/model.pt": _pickled(inputs)})
    return Case(args=[str(p)], needles=[str(p), "sample_inputs", "--trust-pickle"],
                checkpoint=p, marker=marker)


def _payload_config(zoo: Zoo, suffix: str) -> dict:
    """The good .pt2's payload config (weights or constants) as JSON."""
    import json

    with zipfile.ZipFile(zoo.custom_pt2) as z:
        return json.loads(z.read(next(n for n in z.namelist() if n.endswith(suffix))))


@case("pt2 use_pickle weight that runs code")
def _(zoo: Zoo, tmp: Path) -> Case:
    import json

    marker = tmp / "marker"
    config = _payload_config(zoo, "model_weights_config.json")
    fqn, meta = next(iter(config["config"].items()))
    meta["use_pickle"] = True
    p = _rewrite(zoo.custom_pt2, tmp / "model.pt2", {
        "model_weights_config.json": json.dumps(config).encode(),
        f"data/weights/{meta['path_name']}": _pickled(_Payload(payload(marker))),
    })
    return Case(args=[str(p)], needles=[str(p), meta["path_name"], "--trust-pickle"],
                checkpoint=p, marker=marker)


@case("pt2 opaque constant that is a raw pickle")
def _(zoo: Zoo, tmp: Path) -> Case:
    import json
    import pickle

    marker = tmp / "marker"
    config = _payload_config(zoo, "model_constants_config.json")
    config["config"]["evil"] = {"path_name": "opaque_obj_0", "use_pickle": True}
    p = _rewrite(zoo.custom_pt2, tmp / "model.pt2",
                 {"model_constants_config.json": json.dumps(config).encode()},
                 {"data/constants/opaque_obj_0": pickle.dumps(_Payload(payload(marker)), 0)})
    return Case(args=[str(p)], needles=[str(p), "opaque_obj_0", "--trust-pickle"],
                checkpoint=p, marker=marker)


@case("legacy torch.save pickle that runs code")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    p = tmp / "weights.pth"
    with p.open("wb") as f:
        torch.save({"w": _Payload(payload(marker))}, f, _use_new_zipfile_serialization=False)
    return Case(args=[str(p), "--model-class", f"{zoo.model_file}:TinyTagger",
                      "--input-spec", CUSTOM_SPEC],
                needles=[str(p), "--trust-pickle"], checkpoint=p, marker=marker)


@case("model folder whose pytorch_model.bin runs code")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    folder = Path(shutil.copytree(zoo.bert, tmp / "m"))
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(_pickled({"w": _Payload(payload(marker))}))
    return Case(args=[str(folder)], needles=[str(folder), "cannot load the weights"],
                checkpoint=folder, marker=marker)


@case("pt2 legacy pickled weights file")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    p = _rewrite(zoo.custom_pt2, tmp / "model.pt2", {},
                 {"data/weights/model.pt": _pickled({"w": _Payload(payload(marker))})})
    return Case(args=[str(p)], needles=[str(p), "data/weights/model.pt", "--trust-pickle"],
                checkpoint=p, marker=marker)


def _with_member(zoo: Zoo, tmp: Path, name: str, data: bytes,
                 compression: int = zipfile.ZIP_STORED) -> Path:
    """A copy of the good .pt2 with one more member."""
    p = Path(shutil.copy(zoo.custom_pt2, tmp / "model.pt2"))
    with zipfile.ZipFile(p, "a", compression=compression) as z:
        z.writestr(name, data)
    return p


@case("pt2 member with an absolute name")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = _with_member(zoo, tmp, "/etc/evil", b"x")
    return Case(args=[str(p)], needles=[str(p), "/etc/evil", "leaves the archive"], checkpoint=p)


@case("pt2 member that climbs out")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = _with_member(zoo, tmp, "../../evil", b"x")
    return Case(args=[str(p)], needles=[str(p), "../../evil", "leaves the archive"], checkpoint=p)


@case("pt2 compression bomb")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = _with_member(zoo, tmp, "tiny_tagger/extra/zeros", b"\0" * (64 * 2**20),
                     zipfile.ZIP_DEFLATED)
    return Case(args=[str(p)], needles=[str(p), "compression bomb"], checkpoint=p)


@case("pt2 with a shared library")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = _with_member(zoo, tmp, "tiny_tagger/data/aotinductor/model/model.so", b"\x7fELF")
    return Case(args=[str(p)], needles=[str(p), "model.so", "shared library"], checkpoint=p)


@case("pt2 renamed weights.pt with model-class")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    inputs = (_Payload(payload(marker)), zoo.custom_inputs())
    p = _rewrite(zoo.custom_pt2, tmp / "weights.pt", {"sample_inputs/model.pt": _pickled(inputs)})
    return Case(args=[str(p), "--model-class", f"{zoo.model_file}:TinyTagger",
                      "--input-spec", CUSTOM_SPEC],
                needles=[str(p), "--model-class is for a state_dict", "torch-export"],
                checkpoint=p, marker=marker)


@case("torchscript renamed weights.pt with model-class")
def _(zoo: Zoo, tmp: Path) -> Case:
    p = shutil.copy(zoo.custom_torchscript, tmp / "weights.pt")
    return Case(args=[str(p), "--model-class", f"{zoo.model_file}:TinyTagger",
                      "--input-spec", CUSTOM_SPEC],
                needles=[str(p), "--model-class is for a state_dict", "torchscript"],
                checkpoint=Path(p))


@case("state_dict pickle that runs code")
def _(zoo: Zoo, tmp: Path) -> Case:
    marker = tmp / "marker"
    p = tmp / "weights.pt"
    p.write_bytes(_pickled({"encode.0.weight": _Payload(payload(marker))}))
    return Case(args=[str(p), "--model-class", f"{zoo.model_file}:TinyTagger",
                      "--input-spec", CUSTOM_SPEC],
                needles=[str(p), "--trust-pickle"], checkpoint=p, marker=marker)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_archive_is_refused_before_anything_runs(model_zoo: Zoo, tmp_path: Path,
                                                         capsys, name: str) -> None:
    assert_refused(CASES[name](model_zoo, tmp_path), tmp_path, capsys)


def test_export_archive_with_plain_members_loads_weights_only(model_zoo: Zoo) -> None:
    from converters.archive import check_export_archive

    check_export_archive(model_zoo.custom_pt2, trust_pickle=False)  # nothing refused
