"""The shared prompt prefix the llama.cpp batch decoder evaluates once (``common_prefix``)."""

from __future__ import annotations

import pytest

from quarry.adapters.llamacpp_batch import common_prefix


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        ([], 0),
        ([[1, 2, 3]], 2),  # one prompt: all but its last token (whose logits start the answer)
        ([[1, 2, 3, 4], [1, 2, 3, 5]], 3),
        ([[1, 2, 3], [1, 2, 3, 4]], 2),  # the shorter prompt keeps one token of its own
        ([[1, 2], [3, 4]], 0),
        ([[7, 8, 9], [7, 8, 9]], 2),  # the same prompt twice
    ],
)
def test_the_prefix_every_prompt_shares_leaves_each_a_token_of_its_own(prompts: list[list[int]], expected: int) -> None:
    assert common_prefix(prompts) == expected
