"""The generation settings the loop honours, read from a bundle's config files.

Rules, following transformers 4.57's ``GenerationConfig`` and ``generate``:

- ``generation_config.json`` is the source when it exists; only without it are the
  generation keys of ``config.json`` used (non-null values only), as
  ``GenerationConfig.from_model_config`` does. The two files are never mixed key by key:
  transformers does not mix them either.
- A key the loop cannot honour (sampling, group beams, constraints, bad words, ...) raises
  ``ValueError`` naming it, unless it holds its neutral value. Sampling-only keys
  (temperature, top_k, ...) are ignored in the files while ``do_sample`` is false, as
  transformers ignores them; other keys transformers' generic loop does not read are ignored.
- Lengths are resolved per call by :meth:`GenerationSettings.plan`, as
  ``_prepare_generated_length`` does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .search import SearchPlan

# transformers' GenerationConfig().max_length: a max_length equal to it counts as unset.
DEFAULT_MAX_LENGTH = 20
_EARLY_STOPPING = (True, False, "never")
# Keys the loop cannot honour, with the values that make them harmless.
_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "do_sample": (False, None),
    "num_beam_groups": (1, None),
    "diversity_penalty": (0.0, None),
    "constraints": (None,),
    "force_words_ids": (None,),
    "bad_words_ids": (None,),
    "sequence_bias": (None,),
    "penalty_alpha": (None, 0.0),
    "dola_layers": (None,),
    "prompt_lookup_num_tokens": (None,),
    "assistant_early_exit": (None,),
    "stop_strings": (None,),
    "max_time": (None,),
    "encoder_repetition_penalty": (1.0, None),
    "encoder_no_repeat_ngram_size": (0, None),
    "suppress_tokens": (None, []),
    "begin_suppress_tokens": (None, []),
    "exponential_decay_length_penalty": (None,),
    "remove_invalid_values": (False, None),
    "renormalize_logits": (False, None),
    "guidance_scale": (None, 1.0),
    "watermarking_config": (None,),
    "token_healing": (False, None),
    "num_return_sequences": (1, None),
    "low_memory": (None, False),
}
# Keys that only act when sampling; neutral values as in GenerationConfig().
_SAMPLING_ONLY: dict[str, tuple[Any, ...]] = {
    "temperature": (1.0, None),
    "top_k": (50, None),
    "top_p": (1.0, None),
    "min_p": (None,),
    "typical_p": (1.0, None),
    "epsilon_cutoff": (0.0, None),
    "eta_cutoff": (0.0, None),
}
_CONFIG_FILE = "config.json"
_GENERATION_CONFIG_FILE = "generation_config.json"


@dataclass(frozen=True, kw_only=True)
class GenerationSettings:
    """The settings of transformers' ``GenerationConfig`` that the loop honours.

    Token-id lists (``eos_token_id``, ``forced_eos_token_id``) are kept as tuples. Defaults are
    ``GenerationConfig()``'s.
    """

    max_length: int = DEFAULT_MAX_LENGTH
    max_new_tokens: int | None = None
    min_length: int = 0
    min_new_tokens: int | None = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    eos_token_id: int | tuple[int, ...] | None = None
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    decoder_start_token_id: int | None = None
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | tuple[int, ...] | None = None
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        for name in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            if isinstance(value, list):
                # Frozen settings hold tuples, so they hash and cannot change under a caller.
                object.__setattr__(self, name, tuple(value))
        _check_int("max_length", self.max_length, minimum=1)
        _check_int("max_new_tokens", self.max_new_tokens, minimum=1, optional=True)
        _check_int("min_length", self.min_length, minimum=0)
        _check_int("min_new_tokens", self.min_new_tokens, minimum=0, optional=True)
        _check_int("num_beams", self.num_beams, minimum=1)
        _check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, minimum=0)
        _check_float("length_penalty", self.length_penalty)
        _check_float("repetition_penalty", self.repetition_penalty)
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        stopping = self.early_stopping
        if not (stopping is True or stopping is False or stopping == "never"):
            raise ValueError(
                f"early_stopping must be one of {_EARLY_STOPPING}, got {self.early_stopping!r}"
            )
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            _check_int(name, getattr(self, name), minimum=0, optional=True)
        _check_int("forced_bos_token_id", self.forced_bos_token_id, minimum=0, optional=True)
        for name in ("eos_token_id", "forced_eos_token_id"):
            _token_ids(name, getattr(self, name))

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """The end-of-sequence ids as a tuple, empty when there is none."""
        return _token_ids("eos_token_id", self.eos_token_id)

    @property
    def pad_or_eos(self) -> int | None:
        """The padding id transformers uses: ``pad_token_id``, else the first EOS id."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        eos = self.eos_token_ids
        return eos[0] if eos else None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "settings") -> GenerationSettings:
        """Build settings from a generation config's keys, refusing ones the loop cannot honour.

        Raises:
            ValueError: naming every key (and its value) that the loop cannot honour, or a
                malformed value.
        """
        _check_unsupported(raw, source=source, ignore_sampling_only=not raw.get("do_sample"))
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in names}
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from e

    def with_overrides(self, overrides: Mapping[str, Any]) -> GenerationSettings:
        """Return a copy with ``overrides`` applied; neutral values of unsupported keys are ignored.

        Raises:
            ValueError: for a name that is no setting, or one the loop cannot honour.
        """
        names = sorted(f.name for f in dataclasses.fields(self))
        unknown = sorted(
            k for k in overrides if k not in names and k not in _UNSUPPORTED
            and k not in _SAMPLING_ONLY
        )
        if unknown:
            raise ValueError(f"unknown generation settings {unknown}; allowed: {names}")
        _check_unsupported(overrides, source="generate()", ignore_sampling_only=False)
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if k in names})

    def plan(self, *, prompt_length: int, max_length_given: bool,
             max_positions: int | None) -> SearchPlan:
        """Resolve the lengths and special tokens of one call, as transformers' ``generate`` does.

        ``prompt_length`` is the decoder's prompt: the start token for an encoder-decoder, the
        (padded) prompt for a decoder-only model. ``max_new_tokens`` wins over ``max_length``;
        a ``max_length`` left at transformers' default 20 means 20 new tokens, capped at
        ``max_positions``.

        Raises:
            ValueError: when the prompt is already ``max_length`` long.
        """
        max_length = self.max_length
        if self.max_new_tokens is not None:
            max_length = self.max_new_tokens + prompt_length
        elif not max_length_given and max_length == DEFAULT_MAX_LENGTH:
            max_length = DEFAULT_MAX_LENGTH + prompt_length
            if max_positions is not None:
                max_length = min(max_length, max_positions)
        if prompt_length >= max_length:
            raise ValueError(
                f"the decoder prompt is {prompt_length} tokens long but max_length is "
                f"{max_length}; raise max_length or set max_new_tokens"
            )
        min_length = self.min_length
        if self.min_new_tokens is not None:
            min_length = self.min_new_tokens + prompt_length
        return SearchPlan(
            prompt_length=prompt_length,
            max_length=max_length,
            min_length=min_length,
            min_new_tokens=self.min_new_tokens,
            eos_token_ids=self.eos_token_ids,
            pad_token_id=self.pad_or_eos,
            forced_bos_token_id=self.forced_bos_token_id,
            forced_eos_token_ids=_token_ids("forced_eos_token_id", self.forced_eos_token_id),
            no_repeat_ngram_size=self.no_repeat_ngram_size,
            repetition_penalty=float(self.repetition_penalty),
            num_beams=self.num_beams,
            length_penalty=float(self.length_penalty),
            early_stopping=self.early_stopping,
        )


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """What the loop needs from ``config.json`` besides generation settings.

    Attributes:
        max_positions: ``max_position_embeddings`` (or GPT-2's ``n_positions``), which caps
            the default length; None when the config names none.
    """

    max_positions: int | None = None


def load_settings(
    folder: Path, overrides: Mapping[str, Any] | None = None
) -> tuple[GenerationSettings, ModelFacts]:
    """Read the generation settings and model facts from the config files in ``folder``.

    Missing files mean transformers' defaults. ``overrides`` replace keys of the file before
    it is read: ``{"do_sample": False}`` opens a checkpoint whose config samples, for greedy
    and beam search.

    Raises:
        ValueError: when a file is not a JSON object, or holds settings the loop cannot honour.
    """
    config = _read_json(folder / _CONFIG_FILE)
    generation = _read_json(folder / _GENERATION_CONFIG_FILE)
    if generation is not None:
        settings = GenerationSettings.from_dict(
            {**generation, **(overrides or {})}, source=str(folder / _GENERATION_CONFIG_FILE)
        )
    else:
        # from_model_config drops the config's null values before reading generation keys.
        raw = {k: v for k, v in (config or {}).items() if v is not None}
        settings = GenerationSettings.from_dict(
            {**raw, **(overrides or {})}, source=str(folder / _CONFIG_FILE)
        )
    positions = None
    for key in ("max_position_embeddings", "n_positions"):
        value = (config or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            positions = value
            break
    return settings, ModelFacts(max_positions=positions)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _check_unsupported(raw: Mapping[str, Any], *, source: str, ignore_sampling_only: bool) -> None:
    bad = [
        f"{k}={v!r}" for k, v in raw.items()
        if k in _UNSUPPORTED and not _is_neutral(v, _UNSUPPORTED[k])
    ]
    if not ignore_sampling_only:
        bad += [
            f"{k}={v!r}" for k, v in raw.items()
            if k in _SAMPLING_ONLY and not _is_neutral(v, _SAMPLING_ONLY[k])
        ]
    if bad:
        raise ValueError(
            f"{source}: generation settings this runtime cannot honour: {', '.join(bad)}; it "
            f"decodes greedily or by beam search (num_beams > 1) only, without sampling, "
            f"groups, constraints or extra logits processors"
        )


def _is_neutral(value: Any, neutral: tuple[Any, ...]) -> bool:
    for n in neutral:
        if n is None or value is None:
            if value is n:
                return True
        # A bool never matches a number: do_sample=1 or num_beam_groups=True are not neutral.
        elif isinstance(value, bool) == isinstance(n, bool) and value == n:
            return True
    return False


def _check_int(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        allowed = f"an int >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_float(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")


def _token_ids(name: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    ids = (value,) if not isinstance(value, (list, tuple)) else tuple(value)
    if not ids or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in ids):
        raise ValueError(f"{name} must be a token id >= 0 or a non-empty list of them, "
                         f"got {value!r}")
    return ids
