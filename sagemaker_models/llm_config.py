"""Serving configuration of the LLM endpoint, generated from one typed config.

Two containers are supported, both answering the Messages API (OpenAI chat-completion
chunks) that ``quarry.adapters.sagemaker.SageMakerChatModel`` streams by default:

* ``tgi``: Hugging Face Text Generation Inference (the "huggingface-llm" image). Configured
  only through environment variables (``HF_MODEL_ID``, ``SM_NUM_GPUS``, ``MAX_INPUT_TOKENS``...).
* ``lmi``: AWS Large Model Inference (DJL Serving, vLLM or lmi-dist back end). Configured with
  a ``serving.properties`` file shipped in the model archive, or the equivalent environment
  variables (``option.x`` -> ``OPTION_X``; a few have their own names).

Pure Python, no AWS or torch imports: the CDK stack imports it to set the endpoint's
environment, and ``python sagemaker_models/llm_config.py config.json --format env`` prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LlmEndpointConfig",
    "environment",
    "lmi_environment",
    "lmi_serving_properties",
    "main",
    "tgi_environment",
]

Container = Literal["tgi", "lmi"]
_TGI_QUANTIZE = ("awq", "gptq", "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "eetq", "fp8", "marlin")
_LMI_QUANTIZE = ("awq", "gptq", "fp8", "bitsandbytes")
_DTYPES = {"float16": "fp16", "bfloat16": "bf16"}  # TGI name -> LMI name
_ROLLING_BATCH = ("vllm", "lmi-dist")


@dataclass(frozen=True, slots=True)
class LlmEndpointConfig:
    """What to serve and within which limits. ``max_total_tokens`` is prompt + answer."""

    model_id: str  # Hugging Face Hub id, or an s3:// prefix holding the weights
    container: Container = "tgi"
    revision: str | None = None
    num_gpus: int = 1
    max_input_tokens: int = 3072
    max_total_tokens: int = 4096
    max_batch_prefill_tokens: int | None = None  # TGI; default: max_input_tokens
    max_concurrent_requests: int = 64
    quantize: str | None = None
    dtype: str | None = None  # "float16" | "bfloat16"
    trust_remote_code: bool = False
    rolling_batch: str = "vllm"  # LMI back end
    max_rolling_batch_size: int = 32  # LMI

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> Iterator[str]:
        if not self.model_id.strip():
            yield "model_id is required"
        if self.container not in ("tgi", "lmi"):
            yield f"container must be 'tgi' or 'lmi', not {self.container!r}"
        if self.num_gpus < 1:
            yield "num_gpus must be at least 1"
        if not 1 <= self.max_input_tokens < self.max_total_tokens:
            yield "max_input_tokens must be at least 1 and below max_total_tokens"
        if self.max_batch_prefill_tokens is not None and self.max_batch_prefill_tokens < self.max_input_tokens:
            yield "max_batch_prefill_tokens must be at least max_input_tokens"
        allowed = _TGI_QUANTIZE if self.container == "tgi" else _LMI_QUANTIZE
        if self.quantize is not None and self.quantize not in allowed:
            yield f"quantize for {self.container} must be one of {allowed}, not {self.quantize!r}"
        if self.dtype is not None and self.dtype not in _DTYPES:
            yield f"dtype must be one of {tuple(_DTYPES)}, not {self.dtype!r}"
        if self.rolling_batch not in _ROLLING_BATCH:
            yield f"rolling_batch must be one of {_ROLLING_BATCH}, not {self.rolling_batch!r}"
        if self.max_concurrent_requests < 1 or self.max_rolling_batch_size < 1:
            yield "concurrency limits must be at least 1"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LlmEndpointConfig:
        known = {item.name for item in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown LLM endpoint settings {sorted(unknown)}")
        return cls(**dict(raw))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tgi_environment(config: LlmEndpointConfig) -> dict[str, str]:
    """Environment of the Hugging Face TGI container on SageMaker."""
    env = {
        "HF_MODEL_ID": config.model_id,
        "SM_NUM_GPUS": str(config.num_gpus),
        "MAX_INPUT_TOKENS": str(config.max_input_tokens),
        "MAX_TOTAL_TOKENS": str(config.max_total_tokens),
        "MAX_BATCH_PREFILL_TOKENS": str(config.max_batch_prefill_tokens or config.max_input_tokens),
        "MAX_CONCURRENT_REQUESTS": str(config.max_concurrent_requests),
        "MESSAGES_API_ENABLED": "true",  # needed by TGI images before 2.0; later ones ignore it
    }
    if config.revision:
        env["HF_MODEL_REVISION"] = config.revision
    if config.quantize:
        env["HF_MODEL_QUANTIZE"] = config.quantize
    if config.dtype:
        env["DTYPE"] = config.dtype
    if config.trust_remote_code:
        env["HF_MODEL_TRUST_REMOTE_CODE"] = "true"
    return env


def _lmi_options(config: LlmEndpointConfig) -> dict[str, str]:
    options = {
        "model_id": config.model_id,
        "rolling_batch": config.rolling_batch,
        "tensor_parallel_degree": str(config.num_gpus),
        "max_rolling_batch_size": str(config.max_rolling_batch_size),
        "max_model_len": str(config.max_total_tokens),
    }
    if config.revision:
        options["revision"] = config.revision
    if config.dtype:
        options["dtype"] = _DTYPES[config.dtype]
    if config.quantize:
        options["quantize"] = config.quantize
    if config.trust_remote_code:
        options["trust_remote_code"] = "true"
    return options


def _lmi_engine(config: LlmEndpointConfig) -> str:
    return "MPI" if config.rolling_batch == "lmi-dist" else "Python"


def lmi_serving_properties(config: LlmEndpointConfig) -> str:
    """``serving.properties`` for the LMI container (shipped next to the weights)."""
    lines = [f"engine={_lmi_engine(config)}"]
    lines += [f"option.{key}={value}" for key, value in _lmi_options(config).items()]
    return "\n".join(lines) + "\n"


_LMI_ENV_NAMES = {
    "model_id": "HF_MODEL_ID",
    "tensor_parallel_degree": "TENSOR_PARALLEL_DEGREE",
    "trust_remote_code": "HF_MODEL_TRUST_REMOTE_CODE",
}


def lmi_environment(config: LlmEndpointConfig) -> dict[str, str]:
    """The same LMI configuration as environment variables."""
    env = {_LMI_ENV_NAMES.get(key, f"OPTION_{key.upper()}"): value for key, value in _lmi_options(config).items()}
    if _lmi_engine(config) == "MPI":
        env["SERVING_LOAD_MODELS"] = "test::MPI=/opt/ml/model"
    return env


def environment(config: LlmEndpointConfig) -> dict[str, str]:
    """The endpoint container's environment, whichever container is configured."""
    return tgi_environment(config) if config.container == "tgi" else lmi_environment(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the LLM endpoint's serving configuration.")
    parser.add_argument("config", type=Path, help="JSON file with LlmEndpointConfig fields")
    parser.add_argument("--format", choices=("env", "properties"), default="env")
    args = parser.parse_args(argv)
    try:
        config = LlmEndpointConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        print(f"llm_config.py: {exc}", file=sys.stderr)
        return 2
    if args.format == "properties":
        if config.container != "lmi":
            print("llm_config.py: serving.properties is for the lmi container", file=sys.stderr)
            return 2
        sys.stdout.write(lmi_serving_properties(config))
    else:
        print(json.dumps(environment(config), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
