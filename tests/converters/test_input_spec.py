from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convert_model.core.errors import UsageError
from converters.input_spec import from_tensor_specs, parse_input_spec, split_top_level
from converters.types import TensorSpec


def test_input_spec_parses_dtypes_axes_shapes_and_ranges():
    spec = parse_input_spec(
        "input_ids:int64[batch,seq]=1x128/4x32@0..30522,attention_mask:int64[batch,seq]@1..2"
    )
    assert spec.names == ("input_ids", "attention_mask")
    assert spec.dynamic_axes == {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "seq"},
    }
    first, second = spec.examples()
    assert first["input_ids"].shape == (1, 128) and second["input_ids"].shape == (4, 32)
    assert first["attention_mask"].shape == (1, 128), "sizes shared through the axis name"
    assert (first["attention_mask"] == 1).all()
    assert first["input_ids"].dtype == np.int64 and first["input_ids"].max() < 30522


def test_input_spec_derives_a_second_shape_for_dynamic_axes():
    first, second = parse_input_spec("x:float32[batch,3,224,224]=1x3x224x224").examples()
    assert first["x"].shape == (1, 3, 224, 224) and second["x"].shape == (2, 3, 224, 224)


def test_input_spec_static_inputs_get_one_shape():
    (only,) = parse_input_spec("x:float32[3,4]").examples()
    assert only["x"].shape == (3, 4) and only["x"].dtype == np.float32


def test_input_spec_examples_are_deterministic():
    spec = parse_input_spec("x:float32[batch,8]=2x8")
    assert np.array_equal(spec.examples(seed=1)[0]["x"], spec.examples(seed=1)[0]["x"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("x", "malformed"),
        ("x:float32", "malformed"),
        ("x:complex[2]", "unknown dtype"),
        ("x:float32[0]", "neither a positive size"),
        ("x:float32[b-1]", "neither a positive size"),
        ("x:float32[batch,3]=2x4", "fixed dim of 3 to 4"),
        ("x:float32[batch,3]=2", "has 1 sizes but the input has 2 dims"),
        ("x:float32[batch]=0", "positive sizes"),
        ("x:float32[batch]@3..1", "empty"),
        ("x:float32[batch]=2,x:float32[batch]=2", "more than once"),
        ("a:float32[batch]=2,b:float32[batch]=3", "axis 'batch' is 2 in one input and 3"),
        ("a:float32[batch]=2/3,b:float32[batch]=2", "different numbers of shapes"),
    ],
)
def test_input_spec_rejects_malformed_text(text, message):
    with pytest.raises(UsageError, match=message):
        parse_input_spec(text)


def test_input_spec_from_tensor_specs_defaults_dynamic_sizes():
    spec = from_tensor_specs((TensorSpec(name="ids", dtype="int64", dims=("batch", "seq")),))
    first, second = spec.examples()
    assert first["ids"].shape == (1, 16) and second["ids"].shape == (2, 8)


def test_split_top_level_ignores_commas_in_brackets():
    assert split_top_level("a:f[1,2],b:f[3]") == ["a:f[1,2]", "b:f[3]"]


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_dtype = st.sampled_from(["float32", "int64", "int32", "bool", "float16", "uint8"])
_dims = st.lists(
    st.one_of(st.integers(1, 5), st.sampled_from(["batch", "seq", "n"])), min_size=1, max_size=4
)


@given(name=_names, dtype=_dtype, dims=_dims)
def test_input_spec_roundtrips_generated_specs(name, dtype, dims):
    text = f"{name}:{dtype}[{','.join(str(d) for d in dims)}]"
    spec = parse_input_spec(text)
    (tensor,) = spec.inputs
    assert tensor.spec.dims == tuple(dims) and tensor.spec.dtype == dtype
    for example in spec.examples():
        value = example[name]
        assert value.dtype == np.dtype(dtype)
        for dim, size in zip(dims, value.shape, strict=True):
            assert isinstance(dim, str) or dim == size


@given(st.text(max_size=40))
def test_input_spec_never_fails_with_anything_but_usage_error(text):
    try:
        parse_input_spec(text)
    except UsageError:
        pass
