"""The core of ``quarry config``: settings in, a validated, minimal deploy configuration file out.

Pure functions shared by the interactive and the flag-driven mode (:mod:`quarry.cli_config` only prompts
and prints): parse ``KEY=VALUE`` settings and check their keys against :class:`DeployConfig`, apply them and
validate the result (:func:`configure`), keep only what differs from the baseline (:func:`changes`), render
it as TOML, JSON or YAML (:func:`render`) and write it only after reading it back to the same configuration
(:func:`write`). The baseline is what the file is overlaid on when deploying: the ``quarry`` context of
``cdk.json`` (the same base ``cdk deploy -c config=FILE`` and ``quarry cost --config FILE`` use).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin

from pydantic import BaseModel

from quarry.deployment.config import DeployConfig, load_config
from quarry.deployment.cost import Estimate
from quarry.errors import InvalidInput

__all__ = [
    "FORMATS",
    "Setting",
    "Totals",
    "cdk_context",
    "changes",
    "check_key",
    "configure",
    "describe_totals",
    "parse_setting",
    "render",
    "starting_point",
    "totals",
    "write",
]

FORMATS = (".toml", ".json", ".yaml", ".yml")

_HEADER = """Quarry deploy configuration, written by `quarry config`: only what differs from the defaults
(every field and its default: DeployConfig in quarry/deployment/config.py).
  deploy:   quarry deploy --config {name}
  estimate: quarry cost --config {name}
  change:   quarry config --from {name}"""


@dataclass(frozen=True)
class Setting:
    """One ``KEY=VALUE`` choice: ``path`` is the dotted key split (``("opensearch", "enabled")``)."""

    path: tuple[str, ...]
    value: Any

    @property
    def key(self) -> str:
        return ".".join(self.path)


# ---------------------------------------------------------------------------------------------- settings


def parse_setting(text: str) -> Setting:
    """``KEY=VALUE`` with the value parsed as JSON when it parses (``true``, ``3``, ``["a"]``), else a string."""
    key, sep, raw = text.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(path):
        raise InvalidInput(f"--set expects KEY=VALUE (e.g. opensearch.enabled=true), got {text!r}")
    check_key(path)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return Setting(path, value)


def check_key(path: Sequence[str]) -> None:
    """Fail with the nearest valid name unless ``path`` names a field (or a section) of :class:`DeployConfig`.

    Checked before validation so a typo is reported as such, with the fields the section has, rather than
    as pydantic's generic "extra inputs are not permitted". Below a free-form mapping field
    (``sagemaker.llm_serving``, ``*.environment``) any key is accepted.
    """
    model: type[BaseModel] = DeployConfig
    for depth, name in enumerate(path):
        fields = model.model_fields
        key = ".".join(path)
        if name not in fields:
            section = ".".join(path[:depth]) or "the top level"
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {'.'.join((*path[:depth], close[0]))}?" if close else ""
            raise InvalidInput(f"unknown setting {key}: {section} has {', '.join(fields)}{hint}")
        annotation = fields[name].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        if get_origin(annotation) is dict:
            return
        if depth < len(path) - 1:
            raise InvalidInput(f"unknown setting {key}: {'.'.join(path[: depth + 1])} is a value, not a section")
        return


def _set(data: dict[str, Any], setting: Setting) -> None:
    node = data
    for depth, name in enumerate(setting.path[:-1]):
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise InvalidInput(f"cannot set {setting.key}: {'.'.join(setting.path[: depth + 1])} is not a mapping")
        node = child
    node[setting.path[-1]] = setting.value


def configure(config: DeployConfig, settings: Sequence[Setting]) -> DeployConfig:
    """``config`` with ``settings`` applied, validated by :class:`DeployConfig` (errors name the field)."""
    data = config.model_dump(mode="json")
    for setting in settings:
        check_key(setting.path)
        _set(data, setting)
    return load_config(data)


# ---------------------------------------------------------------------------------------------- baseline


def cdk_context(cdk_json: Path | None) -> dict[str, Any]:
    """The ``context.quarry`` mapping of ``cdk.json`` (the base a config file overlays); empty when absent."""
    if cdk_json is None or not cdk_json.is_file():
        return {}
    try:
        context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}).get("quarry", {})
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(f"{cdk_json} is not valid JSON with a context.quarry mapping: {exc}") from exc
    return context if isinstance(context, dict) else {}


def starting_point(context: Mapping[str, Any], from_file: Path | None = None) -> tuple[DeployConfig, DeployConfig]:
    """(baseline, start): what ``cdk.json`` alone deploys, and that overlaid by ``from_file`` if given."""
    baseline = load_config(context)
    return baseline, load_config(context, from_file) if from_file else baseline


def changes(config: BaseModel, baseline: BaseModel) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``baseline``, nested by section, as plain JSON-able values.

    A section is written whole when one of its fields has no default (a SageMaker ``EndpointConfig``):
    partial, it would not validate. A mapping field (``llm_serving``) is written whole too, since it
    replaces its default rather than merging with it.
    """
    out: dict[str, Any] = {}
    for name in type(config).model_fields:
        new, old = getattr(config, name), getattr(baseline, name)
        if new == old:
            continue
        section = isinstance(new, BaseModel) and isinstance(old, BaseModel)
        if section and all(not f.is_required() for f in type(new).model_fields.values()):
            out[name] = changes(new, old)
        else:
            out[name] = config.model_dump(mode="json", include={name})[name]
    return out


# ---------------------------------------------------------------------------------------------- files


def _null_key(data: Mapping[str, Any], prefix: str = "") -> str | None:
    """The dotted key of the first ``None`` in ``data`` (which TOML cannot hold), if any."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if value is None:
            return dotted
        found = _null_key(value, f"{dotted}.") if isinstance(value, Mapping) else None
        if found is not None:
            return found
    return None


def render(data: Mapping[str, Any], path: Path) -> str:
    """``data`` in the format ``path``'s suffix names, with a header saying how to use the file (not JSON)."""
    suffix = path.suffix.lower()
    header = _HEADER.format(name=path.name)
    if suffix == ".toml":
        null = _null_key(data)
        if null is not None:
            raise InvalidInput(
                f"{null} cannot be written to {path.name}: TOML has no null (None); write a .json or .yaml file instead"
            )
        import tomli_w  # only for TOML files

        return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) + "\n" + tomli_w.dumps(data)
    if suffix == ".json":
        return json.dumps(data, indent=2) + "\n"
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # optional: only for YAML files, as in load_config
        except ImportError as exc:
            raise InvalidInput(f"writing {path.name} needs PyYAML (pip install pyyaml); or write a .toml file") from exc
        comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        return comments + (yaml.safe_dump(dict(data), sort_keys=False) if data else "{}\n")
    raise InvalidInput(f"cannot write {path.name}: name a {', '.join(FORMATS)} file")


def write(path: Path, text: str, expected: DeployConfig, context: Mapping[str, Any]) -> None:
    """Write ``text`` to ``path`` only if it reads back (over ``context``) as ``expected``; never a partial file.

    The text goes to a hidden file beside ``path``, is loaded exactly as ``cdk deploy -c config=FILE`` loads
    it, and replaces ``path`` atomically only when it yields ``expected``.
    """
    staging = path.with_name(f".{path.stem}.writing{path.suffix}")
    try:
        staging.write_text(text, encoding="utf-8")
        if load_config(context, staging) != expected:
            raise InvalidInput(f"{path.name} would not read back as the chosen configuration; nothing written")
        os.replace(staging, path)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()


# ---------------------------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class Totals:
    """The three headline figures of ``quarry cost`` (USD): idle per month, per 1,000 chats and documents."""

    idle: float
    per_1000_chats: float
    per_1000_documents: float


def totals(est: Estimate) -> Totals:
    """The headline figures of an :class:`Estimate` (from :func:`quarry.deployment.cost.estimate`)."""
    return Totals(
        idle=est.total(est.idle),
        per_1000_chats=est.total(est.per_1000_chats),
        per_1000_documents=est.total(est.per_1000_documents),
    )


def describe_totals(now: Totals, before: Totals | None = None) -> str:
    """One line, e.g. ``estimate: $177.10/month idle (+175.20), $2.07 per 1,000 chats, ...``; deltas vs ``before``."""
    parts = []
    for label, name in (
        ("/month idle", "idle"),
        (" per 1,000 chats", "per_1000_chats"),
        (" per 1,000 documents", "per_1000_documents"),
    ):
        value: float = getattr(now, name)
        delta = value - getattr(before, name) if before else 0.0
        parts.append(f"${value:,.2f}{label}" + (f" ({delta:+,.2f})" if round(delta, 2) else ""))
    return "estimate: " + ", ".join(parts)
