"""The rehearsal fails when the synthesized template is wrong: each test mutates a copy of the default
template as a faulty stack change would, stands it up, and shows the tier catching it. (A ``COPY`` source
missing from the Batch image's staged context: ``test_batch_image.py``.)"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rehearsal.cloud import Cloud, Postgres
from tests.rehearsal.conftest import moto_server
from tests.rehearsal.flows import create_workspace, rest, sign_in
from tests.rehearsal.platform import Rehearsal, Servers
from tests.rehearsal.template import CloudAssembly

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

DROPPED_VARIABLE = "QUARRY_UPLOAD_BUCKET"
DROPPED_ACTION = "dynamodb:PutItem"


def _function_id(template: dict[str, Any], name: str) -> str:
    return next(
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("FunctionName") == name
    )


def _drop_variable(template: dict[str, Any], function_id: str, variable: str) -> None:
    del template["Resources"][function_id]["Properties"]["Environment"]["Variables"][variable]


def _drop_action(template: dict[str, Any], role_id: str, action: str) -> int:
    """Remove ``action`` from every statement of the role's own policies; returns how many statements held it."""
    dropped = 0
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or {"Ref": role_id} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                statement["Action"] = [a for a in actions if a != action]
                dropped += 1
    return dropped


@pytest.fixture(scope="module")
def stand_up(
    default_assembly: CloudAssembly,
    servers: Servers,
    postgres: tuple[str, Postgres],
    runtime_packages: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[dict[str, Any]], Rehearsal]]:
    """Stands up a mutated copy of the default template, each on its own moto."""
    with contextlib.ExitStack() as stack:

        def make(template: dict[str, Any]) -> Rehearsal:
            moto = stack.enter_context(moto_server())
            cloud = Cloud(template, moto, postgres[1]).create()
            own = dataclasses.replace(servers, moto=moto)
            rehearsal = Rehearsal(default_assembly, cloud, own, tmp_path_factory.mktemp("broken"), runtime_packages)
            stack.callback(rehearsal.close)
            return rehearsal

        yield make


def test_a_function_missing_a_variable_fails_and_names_it(
    default_assembly: CloudAssembly, stand_up: Callable[[dict[str, Any]], Rehearsal]
) -> None:
    template = copy.deepcopy(default_assembly.template)
    _drop_variable(template, _function_id(template, "quarry-rest-api"), DROPPED_VARIABLE)
    broken = stand_up(template)
    identity = sign_in(broken, "carol@example.com")
    status, body = rest(broken, identity, "POST", "/workspaces", {"name": "w"})
    assert status == 500, body
    assert f"{DROPPED_VARIABLE} is not set" in broken.process("rest_api").log_tail(20000)


def test_a_role_lacking_a_permission_its_function_uses_is_reported(
    default_assembly: CloudAssembly, stand_up: Callable[[dict[str, Any]], Rehearsal]
) -> None:
    template = copy.deepcopy(default_assembly.template)
    rest_api = _function_id(template, "quarry-rest-api")
    role = template["Resources"][rest_api]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert _drop_action(template, role, DROPPED_ACTION) >= 1
    broken = stand_up(template)
    identity = sign_in(broken, "dave@example.com")
    create_workspace(broken, identity, "w")  # moto does not enforce IAM: the call succeeds, the record shows it
    denials = broken.denials()
    assert any(
        d.function == "quarry-rest-api" and d.action == DROPPED_ACTION and ":table/" in d.resource for d in denials
    ), denials
