"""The checks every ``ChatModel`` adapter makes before it asks its model anything.

One place, so a bad request gets the same ``InvalidInput`` from llama.cpp, Bedrock and SageMaker
(``tests/contracts/chat_model_contract.py``) instead of an unbounded generation or an upstream error.
"""

from __future__ import annotations

from collections.abc import Sequence

from quarry import errors
from quarry.models import Role
from quarry.ports import ChatTurn

__all__ = ["check_chat_request"]


def check_chat_request(
    turns: Sequence[ChatTurn], *, max_tokens: int, temperature: float, max_temperature: float
) -> None:
    """Raise ``InvalidInput`` unless ``max_tokens >= 1``, ``0 <= temperature <= max_temperature`` (the
    model's own range) and some user turn has text."""
    if max_tokens < 1:
        raise errors.InvalidInput("max_tokens must be at least 1")
    if not 0.0 <= temperature <= max_temperature:
        raise errors.InvalidInput(f"temperature must be between 0 and {max_temperature:g}")
    if not any(turn.role is Role.USER and turn.content.strip() for turn in turns):
        raise errors.InvalidInput("a chat needs at least one non-empty user turn")
