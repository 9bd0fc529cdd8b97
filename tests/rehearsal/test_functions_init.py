"""Every function of both templates starts as Lambda starts it: its handler imports from the staged code and
layers alone, on the runtime's Python, with the template's environment; nothing heavy is imported. The init
time of each is what ``docs/benchmarks.md`` reports as its cold start."""

from __future__ import annotations

import pytest

from tests.rehearsal.platform import Rehearsal

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

HEAVY = {"torch", "llama_cpp", "unstructured", "transformers", "sentence_transformers", "langchain"}


@pytest.mark.parametrize("configuration", ["default_rehearsal", "full_rehearsal"])
def test_every_function_of_the_template_initialises(configuration: str, request: pytest.FixtureRequest) -> None:
    rehearsal: Rehearsal = request.getfixturevalue(configuration)
    assert len(rehearsal.functions) >= 9
    failures = {}
    for name in rehearsal.functions:
        process = rehearsal.process(name.removeprefix("quarry-").replace("-", "_"))
        if process.init_error:
            failures[name] = process.init_error + "\n" + process.log_tail(2000)
            continue
        heavy = HEAVY & set(process.init["modules"])
        if heavy:
            failures[name] = f"imports {sorted(heavy)} at init"
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
