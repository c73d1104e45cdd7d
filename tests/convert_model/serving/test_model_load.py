"""The predictor as bundle code: imports nothing of torch, transformers or this project; ready
only after load and warm-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = textwrap.dedent("""
    import sys
    BANNED = {"torch", "transformers", "convert_model", "optimum", "converters", "benchmarks"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BANNED:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    sys.path = [p for p in sys.path if p not in ("", ".")]
""")


@pytest.mark.parametrize("bundle_name", ["text_bundle", "tabular_bundle", "generation_bundle"])
def test_predictor_loads_and_answers_with_torch_transformers_and_project_blocked(
        bundle_name: str, request: pytest.FixtureRequest):
    bundle: Path = request.getfixturevalue(bundle_name)
    code = BLOCKER + textwrap.dedent(f"""
        import asyncio
        sys.path.insert(0, {str(bundle)!r})
        from serving.model import BundleModel
        model = BundleModel("m", {str(bundle)!r}, threads=1)
        assert model.load() and model.ready
        instance = {{"text": ["some text"], "tabular": [{{}}],
                     "generation": [{{"input_ids": [5, 6, 2]}}]}}[model.kind.name]

        async def call():
            parsed = await model.preprocess({{"instances": instance}})
            return await model.postprocess(await model.predict(parsed))

        print(asyncio.run(call())["predictions"][0])
        banned = sorted(m for m in sys.modules
                        if m.split(".")[0] in {{"torch", "transformers", "convert_model"}})
        assert not banned, banned
        model.stop()
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=bundle, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


def test_predictor_is_not_ready_before_load_and_is_after_warm_up(text_bundle: Path):
    from convert_model.serving.model import BundleModel

    model = BundleModel("m", text_bundle, threads=1)
    assert model.ready is False and asyncio.run(model.healthy()) is False
    assert model.engine is None and not model.warmed_up
    assert model.load() is True
    assert model.warmed_up and asyncio.run(model.healthy()) is True
    model.stop()
    assert model.ready is False


def test_serving_modules_import_only_the_bundle_allowed_packages():
    import ast

    import convert_model.serving as package

    # kserve's own dependencies (fastapi, prometheus_client, Pillow) come with it.
    allowed = {"numpy", "onnxruntime", "tokenizers", "kserve", "fastapi", "prometheus_client",
               "PIL", "runtime"} | set(sys.stdlib_module_names)
    offenders = []
    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in allowed]
    assert offenders == []


def test_spinning_is_opt_in_and_reaches_the_session_and_the_command(text_bundle: Path):
    import argparse

    from convert_model.cli_serve import serve_command
    from convert_model.serving.model import BundleModel

    def spinning(model: BundleModel) -> str:
        return model.engine.session.get_session_options().get_session_config_entry(  # type: ignore[union-attr]
            "session.intra_op.allow_spinning")

    quiet = BundleModel("m", text_bundle, threads=1)
    assert quiet.load() and spinning(quiet) == "0" and quiet.schema()["spin"] is False
    quiet.stop()
    spins = BundleModel("m", text_bundle, threads=1, spin=True)
    assert spins.load() and spinning(spins) == "1" and spins.schema()["spin"] is True
    spins.stop()
    base = {"name": "m", "host": "127.0.0.1", "port": 8080, "threads": None, "max_batch": 32,
            "max_wait_ms": 2.0, "max_queue": 256, "max_body_bytes": 1 << 20,
            "wait_when_idle": False}
    assert "--spin" not in serve_command(text_bundle, argparse.Namespace(**base, spin=False))
    assert "--spin" in serve_command(text_bundle, argparse.Namespace(**base, spin=True))


def test_the_predictor_takes_spin_from_its_flag_or_the_environment(
        monkeypatch: pytest.MonkeyPatch):
    from convert_model.serving.__main__ import parse_args

    monkeypatch.delenv("SERVING_SPIN", raising=False)
    assert parse_args([]).spin is False and parse_args(["--spin"]).spin is True
    monkeypatch.setenv("SERVING_SPIN", "1")
    assert parse_args([]).spin is True
