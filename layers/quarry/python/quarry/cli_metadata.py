"""Metadata and filters on the command line: ``--meta key=value``, sidecar files, ``--filter`` / ``--filter-json``.

A sidecar gives each file its own metadata (``quarry ingest docs/ --meta-file docs.csv``):

- JSON: ``{"review-1.txt": {"product": "X", "rating": 4}, ...}``;
- CSV: a header row whose first column is ``file``, the others metadata keys; a cell is typed as ``--meta``
  types a value (numbers, ``true``/``false``, ``[a,b]`` lists; dates are recognised), an empty cell sets nothing.

A file is looked up by its path relative to the sidecar's folder, then by its name. ``--meta`` applies to
every file; a file's own row in the sidecar wins over it, key by key.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quarry.errors import InvalidInput
from quarry.filters import Filter, parse_cli_filters
from quarry.metadata import MetadataValue, parse_meta_assignment, validate_metadata

__all__ = ["FileMetadata", "cli_filter", "parse_meta_options"]


def parse_meta_options(assignments: Iterable[str]) -> dict[str, MetadataValue]:
    """``--meta key=value`` options (repeated); 422-style ``InvalidInput`` naming the option that is wrong."""
    pairs = [parse_meta_assignment(text) for text in assignments]
    return validate_metadata(dict(pairs), where="--meta")


@dataclass(frozen=True, slots=True)
class FileMetadata:
    """The metadata of each file of one ``quarry ingest``: ``--meta`` for all, a sidecar's row per file."""

    common: dict[str, MetadataValue] = field(default_factory=dict)
    per_file: dict[str, dict[str, MetadataValue]] = field(default_factory=dict)
    base: Path | None = None  # the sidecar's folder
    sidecar: Path | None = None

    @classmethod
    def from_options(cls, meta: Iterable[str] | None, meta_file: Path | None) -> FileMetadata:
        common = parse_meta_options(meta or [])
        if meta_file is None:
            return cls(common=common)
        per_file = read_sidecar(meta_file)
        return cls(common=common, per_file=per_file, base=meta_file.resolve().parent, sidecar=meta_file)

    def for_file(self, path: Path) -> dict[str, MetadataValue] | None:
        """The file's metadata; None when neither ``--meta`` nor the sidecar says anything about it."""
        own = self._row(path)
        if own is None and not self.common:
            return None  # nothing said about this file: a known document keeps its own
        return validate_metadata({**self.common, **(own or {})}, where=f"metadata of {path.name}")

    def unmatched(self, paths: Iterable[Path]) -> list[str]:
        """Sidecar rows that name none of ``paths`` (a typo, a file that moved)."""
        used = {name for path in paths for name in self._names(path)}
        return sorted(name for name in self.per_file if name not in used)

    def _row(self, path: Path) -> dict[str, MetadataValue] | None:
        for name in self._names(path):
            if name in self.per_file:
                return self.per_file[name]
        return None

    def _names(self, path: Path) -> list[str]:
        names: list[str] = []
        if self.base is not None:
            with contextlib.suppress(ValueError):  # not under the sidecar's folder
                names.append(path.resolve().relative_to(self.base).as_posix())
        names.append(path.name)
        return names


def read_sidecar(path: Path) -> dict[str, dict[str, MetadataValue]]:
    """Per-file metadata from a ``.json`` or ``.csv`` sidecar (see the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"--meta-file {path}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_sidecar(path, text)
    if suffix == ".csv":
        return _csv_sidecar(path, text)
    raise InvalidInput(f"--meta-file {path}: expected a .json or .csv file")


def _json_sidecar(path: Path, text: str) -> dict[str, dict[str, MetadataValue]]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--meta-file {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f'--meta-file {path}: expected an object {{"file name": {{"key": value}}}}')
    return {str(name): validate_metadata(fields, where=f"{path.name}[{name!r}]") for name, fields in raw.items()}


def _csv_sidecar(path: Path, text: str) -> dict[str, dict[str, MetadataValue]]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0] or rows[0][0].strip().lower() != "file":
        raise InvalidInput(f"--meta-file {path}: the first row is the header, and its first column is 'file'")
    keys = [key.strip() for key in rows[0][1:]]
    out: dict[str, dict[str, MetadataValue]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) > len(keys) + 1:
            raise InvalidInput(f"{path.name} line {line}: {len(row)} columns, the header has {len(keys) + 1}")
        name = row[0].strip()
        if not name:
            raise InvalidInput(f"{path.name} line {line}: the 'file' column is empty")
        fields: dict[str, Any] = {}
        for key, cell in zip(keys, row[1:], strict=False):
            if cell.strip():
                try:
                    _, fields[key] = parse_meta_assignment(f"{key}={cell}")
                except InvalidInput as exc:
                    raise InvalidInput(f"{path.name} line {line}: {exc.message}") from None
        out[name] = validate_metadata(fields, where=f"{path.name} line {line}")
    return out


def cli_filter(expressions: Iterable[str] | None, filter_json: str | None) -> Filter:
    """``--filter`` options (AND of all) or ``--filter-json`` (the JSON form, as REST takes it); not both."""
    expressions = list(expressions or [])
    if expressions and filter_json:
        raise InvalidInput("give --filter or --filter-json, not both")
    if filter_json:
        try:
            raw: Mapping[str, Any] = json.loads(filter_json)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"--filter-json: not valid JSON ({exc.msg})") from None
        return Filter.parse(raw, where="--filter-json")
    return parse_cli_filters(expressions)
