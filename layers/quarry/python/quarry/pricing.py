"""Per-token model prices: the one table both ``quarry cost`` (``quarry/deployment/cost.py``) and the runtime read.

The runtime prices every answer from it (stored with the message and summed per user and workspace per
day); the deployment estimate multiplies the same numbers by its workload assumptions. us-east-1
on-demand list prices in USD, ``(input, output)`` per 1,000 tokens, as of :data:`PRICES_AS_OF`.

A model with no entry here (the packaged local model, a SageMaker endpoint billed by the hour) has no
per-token cost: :func:`token_cost` answers 0 and :func:`is_priced` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["PRICES_AS_OF", "PROFILE_PREFIXES", "TOKEN_PRICES_1K", "base_model_id", "is_priced", "token_cost"]

PRICES_AS_OF = "2025-06-01"

TOKEN_PRICES_1K: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "anthropic.claude-3-haiku-20240307-v1:0": (0.00025, 0.00125),
        "anthropic.claude-3-5-haiku-20241022-v1:0": (0.0008, 0.004),
        "anthropic.claude-3-5-sonnet-20241022-v2:0": (0.003, 0.015),
        "amazon.nova-micro-v1:0": (0.000035, 0.00014),
        "amazon.nova-lite-v1:0": (0.00006, 0.00024),
        "amazon.nova-pro-v1:0": (0.0008, 0.0032),
        "meta.llama3-1-8b-instruct-v1:0": (0.00022, 0.00022),
        "amazon.titan-embed-text-v2:0": (0.00002, 0.0),
        "cohere.embed-english-v3": (0.0001, 0.0),
    }
)

# Cross-region inference profiles (``us.amazon.nova-lite-v1:0``) cost what their model costs.
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.")


def base_model_id(model_id: str) -> str:
    """The model behind an inference profile id (or the id itself)."""
    return model_id.split(".", 1)[1] if model_id.startswith(PROFILE_PREFIXES) else model_id


def is_priced(model_id: str) -> bool:
    return base_model_id(model_id) in TOKEN_PRICES_1K


def token_cost(model_id: str, prompt_tokens: int | float, completion_tokens: int | float) -> float:
    """USD for one call's tokens; 0 for a model without a per-token price."""
    prices = TOKEN_PRICES_1K.get(base_model_id(model_id))
    if prices is None:
        return 0.0
    price_in, price_out = prices
    return float(prompt_tokens / 1000 * price_in + completion_tokens / 1000 * price_out)
