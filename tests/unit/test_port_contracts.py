"""Every port has a contract suite, and every adapter of a port runs under it.

A port is a Protocol in ``quarry.ports``; its suite is the ``<Port>Contract`` class in ``tests/contracts``.
An adapter is a class under ``quarry.adapters``, ``quarry.local`` or ``quarry.text`` that has every method
of a port, with the port's parameter names; it counts as covered when a test
module that subclasses the port's contract builds it (names it). Adding a port or an adapter without its
contract run makes this test fail, naming what is missing.
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path
from typing import Protocol

import pytest

from quarry import ports

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "quarry" / "python" / "quarry"
TESTS = ROOT / "tests"


ADAPTER_HOMES = ("adapters", "local", "text")


@functools.cache
def _ports() -> dict[str, dict[str, set[str]]]:
    """Each Protocol in quarry.ports, with the methods (and their parameter names) an adapter must have."""
    found = {}
    for name, obj in vars(ports).items():
        if inspect.isclass(obj) and Protocol in obj.__mro__[1:] and obj.__module__ == ports.__name__:
            found[name] = {
                method: set(inspect.signature(fn).parameters) - {"self"}
                for method, fn in vars(obj).items()
                if not method.startswith("_") and inspect.isfunction(fn)
            }
    return found


def _classes(path: Path) -> list[ast.ClassDef]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)]


def _methods(cls: ast.ClassDef) -> dict[str, set[str]]:
    """Method name -> its parameter names."""
    return {
        n.name: {a.arg for a in (*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs)} - {"self"}
        for n in cls.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _implements(methods: dict[str, set[str]], needed: dict[str, set[str]]) -> bool:
    return bool(needed) and all(name in methods and params <= methods[name] for name, params in needed.items())


@functools.cache
def _contracts() -> set[str]:
    return {cls.name for path in (TESTS / "contracts").glob("*_contract.py") for cls in _classes(path)}


@functools.cache
def _adapters() -> dict[str, list[str]]:
    """Port name -> the classes under the adapter homes that have all of its methods."""
    port_methods = _ports()
    adapters: dict[str, list[str]] = {port: [] for port in port_methods}
    for home in ADAPTER_HOMES:
        for path in sorted((PACKAGE / home).rglob("*.py")):
            for cls in _classes(path):
                if cls.name.startswith("_"):
                    continue
                methods = _methods(cls)
                for port, needed in port_methods.items():
                    if _implements(methods, needed):
                        adapters[port].append(cls.name)
    return adapters


@functools.cache
def _runners() -> dict[str, str]:
    """Contract class name -> the source of every test module that subclasses it."""
    runners: dict[str, str] = {}
    for path in TESTS.rglob("test_*.py"):
        source = path.read_text()
        for cls in _classes(path):
            for base in cls.bases:
                name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                if name.endswith("Contract"):
                    runners[name] = runners.get(name, "") + source
    return runners


def test_the_ports_are_found() -> None:
    assert {"Catalog", "VectorIndex", "Embedder", "ChatModel", "Workflow", "Notifier"} <= set(_ports())


@pytest.mark.parametrize("port", sorted(_ports()))
def test_every_port_has_a_contract_suite(port: str) -> None:
    assert f"{port}Contract" in _contracts(), f"no {port}Contract in tests/contracts"


@pytest.mark.parametrize("port", sorted(_ports()))
def test_every_adapter_runs_under_its_port_contract(port: str) -> None:
    adapters = _adapters()[port]
    assert adapters, f"no class in the package implements {port}"
    runners = _runners().get(f"{port}Contract", "")
    missing = [name for name in adapters if name not in runners]
    assert not missing, f"{port} adapters never run under {port}Contract: {', '.join(missing)}"
