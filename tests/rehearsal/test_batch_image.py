"""The Batch worker image without a container engine: its build context as CDK stages it, its COPY sources,
and its Python environment built with the base image's Python (3.12) from the Dockerfile's own pip lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rehearsal.dockerfile_check import (
    DockerignoreRules,
    ImageRoot,
    ImageRootError,
    build_image_root,
    cached_image_root,
    missing_copy_sources,
    parse_dockerfile,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "batch_ingest/Dockerfile"
# The image's base is python:3.12-slim; this interpreter stands for it (override: QUARRY_PYTHON312).
PYTHON312 = Path(os.environ.get("QUARRY_PYTHON312", "/root/.pyenv/versions/3.12.1/bin/python3.12"))
# What the staged context may hold: the files the Dockerfile copies, and the .dockerignore CDK keeps.
CONTEXT_TOP_LEVEL = {".dockerignore", "pyproject.toml", "README.md", "layers", "batch_ingest"}
# Built image roots, keyed by the staged context's hash (build/ is git-ignored; the rehearsal caches there too).
IMAGE_CACHE = ROOT / "build" / "rehearsal" / "image-roots"
USAGE_ERROR = "QUARRY_JOB_WORKSPACE_ID and QUARRY_JOB_DOCUMENT_ID must be set"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Batch image's build context exactly as `cdk synth` stages it (default config, real Dockerfile)."""
    from tests.cdk.cdk_synth import synthesize

    base = tmp_path_factory.mktemp("batch-image")
    layer = base / "layer" / "python" / "quarry"
    shutil.copytree(ROOT / "layers/quarry/python/quarry", layer, ignore=shutil.ignore_patterns("__pycache__"))
    synth = synthesize(
        {}, {"layer_asset_dir": str(base / "layer"), "image_dir": str(ROOT / "batch_ingest")}, base / "cdk.out"
    )
    assets = json.loads((synth.outdir / f"{synth.config.stack_name}.assets.json").read_text())
    images = [a["source"] for a in assets["dockerImages"].values()]
    assert len(images) == 1, images
    assert images[0]["dockerFile"] == DOCKERFILE
    return synth.outdir / images[0]["directory"]


@pytest.fixture(scope="module")
def image_root(staged: Path) -> Iterator[ImageRoot]:
    if not PYTHON312.is_file():
        pytest.fail(
            f"Python 3.12 (the image's python:3.12-slim) is needed at {PYTHON312} to build the image root; "
            "install it there or point QUARRY_PYTHON312 at one"
        )
    yield cached_image_root(parse_dockerfile(staged / DOCKERFILE), staged, PYTHON312, cache=IMAGE_CACHE)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------------------------- (a) (b) sources


def test_the_dockerfile_finds_its_sources_in_the_repository_root_context() -> None:
    dockerfile = parse_dockerfile(ROOT / DOCKERFILE)
    assert missing_copy_sources(dockerfile, ROOT) == []
    assert dockerfile.base_image == "public.ecr.aws/docker/library/python:3.12-slim"
    runs = " ".join(ins.value for ins in dockerfile.of("RUN"))
    assert "torch" not in runs and "sentence-transformers" not in runs  # the embedder is Bedrock or SageMaker
    pip = [ins.value for ins in dockerfile.of("RUN") if "pip" in ins.value]
    assert pip == ['pip install --no-cache-dir ".[ingest]"']  # the core + the ingest extra, nothing else
    assert dockerfile.workdir == "/app"
    assert dockerfile.user == "1000"
    entry = dockerfile.entrypoint
    assert entry is not None and entry.argv == ("python", "-m", "batch_ingest.main")
    assert dockerfile.env["HF_HUB_OFFLINE"] == "1"


def test_the_root_dockerignore_keeps_only_what_the_image_copies() -> None:
    rules = DockerignoreRules.read(ROOT)
    for kept in ("pyproject.toml", "README.md", "layers/quarry/python/quarry/wiring.py", "batch_ingest/main.py"):
        assert not rules.excludes(kept), kept
    for dropped in (
        ".venv",
        "node_modules/x",
        "frontend/src/App.tsx",
        "cdk.out/asset.x",
        "tests/conftest.py",
        "build/lib",
        ".git/HEAD",
        "layers/quarry/python/quarry.egg-info/PKG-INFO",
        "layers/quarry/python/quarry/__pycache__/x.pyc",
        "stacks/ingestion.py",
    ):
        assert rules.excludes(dropped), dropped


def _context_copy(staged: Path, target: Path) -> Path:
    shutil.copytree(staged, target)
    return target


def test_a_source_missing_from_the_context_is_reported(staged: Path, tmp_path: Path) -> None:
    context = _context_copy(staged, tmp_path / "ctx")
    shutil.rmtree(context / "layers/quarry/python/quarry")
    problems = missing_copy_sources(parse_dockerfile(context / DOCKERFILE), context)
    assert len(problems) == 1
    assert "COPY layers/quarry/python/quarry" in problems[0] and "not in the build context" in problems[0]


def test_a_copy_of_a_file_that_is_not_there_is_reported(staged: Path, tmp_path: Path) -> None:
    context = _context_copy(staged, tmp_path / "ctx")
    dockerfile = context / DOCKERFILE
    text = dockerfile.read_text().replace(
        "COPY batch_ingest ./batch_ingest", "COPY batch_ingest ./batch_ingest\nCOPY uv.lock scripts/*.sh ./"
    )
    dockerfile.write_text(text)
    problems = missing_copy_sources(parse_dockerfile(dockerfile), context)
    assert [p.split(": ")[1] for p in problems] == ["COPY uv.lock", "COPY scripts/*.sh"]


def test_a_source_excluded_by_the_dockerignore_is_reported(staged: Path, tmp_path: Path) -> None:
    context = _context_copy(staged, tmp_path / "ctx")
    (context / ".dockerignore").write_text((context / ".dockerignore").read_text() + "*.md\nlayers\n")
    problems = missing_copy_sources(parse_dockerfile(context / DOCKERFILE), context)
    assert [p.split(": ")[1] for p in problems] == ["COPY README.md", "COPY layers/quarry/python/quarry"]
    assert "'*.md'" in problems[0] and "'layers'" in problems[1]  # a parent folder's pattern excludes it too


def test_copies_from_other_stages_are_not_context_sources(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "Dockerfile").write_text(
        textwrap.dedent(
            """\
            # syntax=docker/dockerfile:1
            ARG BASE=public.ecr.aws/docker/library/python:3.12-slim
            FROM ${BASE} AS build
            WORKDIR /src
            COPY app.py .
            FROM ${BASE}
            ENV A=1 \\
                B="two words"
            WORKDIR /app
            COPY --from=build --chown=1000:1000 /src/app.py ./
            ADD https://example.com/x.tar.gz /tmp/
            COPY ["app.py", "missing.py", "/app/"]
            CMD python app.py
            """
        )
    )
    dockerfile = parse_dockerfile(tmp_path / "Dockerfile")
    assert dockerfile.base_image == "public.ecr.aws/docker/library/python:3.12-slim"
    assert dockerfile.env == {"A": "1", "B": "two words"}
    copy_from = dockerfile.copies[1]
    assert (copy_from.from_stage, copy_from.chown, copy_from.dest, copy_from.line) == ("build", "1000:1000", "./", 10)
    assert missing_copy_sources(dockerfile, tmp_path) == [
        "line 12: COPY missing.py: not in the build context " + str(tmp_path)
    ]
    cmd = dockerfile.cmd
    assert cmd is not None and cmd.shell_form and cmd.value == "python app.py"


# --------------------------------------------------------------------------------------------- (c) the staged context


def test_cdk_stages_a_small_context_that_holds_every_source(staged: Path) -> None:
    assert {p.name for p in staged.iterdir()} <= CONTEXT_TOP_LEVEL
    files = _files(staged)
    size = sum(p.stat().st_size for p in files)
    assert len(files) < 400 and size < 3_000_000, (len(files), size)
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p)]
    assert (staged / "layers/quarry/python/quarry/sql").is_dir()  # package data travels with the package
    assert missing_copy_sources(parse_dockerfile(staged / DOCKERFILE), staged) == []


# --------------------------------------------------------------------------------------------- (d) the image root


def test_a_missing_or_wrong_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    dockerfile = parse_dockerfile(ROOT / DOCKERFILE)
    with pytest.raises(ImageRootError, match=r"interpreter /nowhere/python3.12 .* is missing"):
        build_image_root(dockerfile, ROOT, tmp_path / "root", "/nowhere/python3.12")
    if sys.version_info[:2] != (3, 12):  # the test runner's own Python is another version
        with pytest.raises(ImageRootError, match=r"is Python 3\.\d+, the image's base .* is Python 3\.12"):
            build_image_root(dockerfile, ROOT, tmp_path / "root", sys.executable)
    assert not (tmp_path / "root").exists()


def test_the_entry_point_runs_in_a_clean_python_3_12_environment(image_root: ImageRoot) -> None:
    assert image_root.entrypoint == (str(image_root.python), "-m", "batch_ingest.main")
    assert image_root.workdir == image_root.root / "app"
    assert (image_root.workdir / "batch_ingest/main.py").is_file()
    assert len(image_root.skipped) == 2, image_root.skipped  # a new RUN line shows up here: is it rehearsed?
    assert "RUN apt-get update" in image_root.skipped[0] and "USER 1000" in image_root.skipped[1]
    done = image_root.run()
    assert done.returncode == 2, done.stdout + done.stderr
    assert USAGE_ERROR in done.stdout + done.stderr


def _in_image(image_root: ImageRoot, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(image_root.python), "-c", textwrap.dedent(code)],
        cwd=image_root.workdir,
        env=image_root.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_image_has_no_torch_and_a_regular_quarry_install(image_root: ImageRoot) -> None:
    probe = _in_image(
        image_root,
        """
        import importlib.metadata, importlib.util, json, re, sys
        import quarry
        mods = ["torch", "llama_cpp", "sentence_transformers", "transformers", "pytest", "moto"]
        unwanted = {"torch", "sentence-transformers", "transformers", "llama-cpp-python"}
        print(json.dumps({
            "version": list(sys.version_info[:2]),
            "quarry": quarry.__file__,
            "present": [m for m in mods if importlib.util.find_spec(m) is not None],
            "pulled_by": sorted(
                f"{d.metadata['Name']} -> {r}"
                for d in importlib.metadata.distributions()
                for r in d.requires or []
                if re.split(r"[ ;<>=!~(\\[]", r)[0].lower() in unwanted and "extra ==" not in r
            ),
        }))
        """,
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["version"] == [3, 12]
    assert found["present"] == [], f"{found['present']} in the image, required by {found['pulled_by']}"
    assert "site-packages" in found["quarry"]  # non-editable: not the copied source under /app/layers


def test_the_parsers_and_the_chunker_work_offline_in_the_image(image_root: ImageRoot) -> None:
    probe = _in_image(
        image_root,
        """
        import io, json
        import docx, opensearchpy
        from quarry.text.chunking import RecursiveChunker
        from quarry.text.parsing import UnstructuredParser
        from quarry.text.tokens import HFTokenizer

        document = docx.Document()
        document.add_heading("Birds of the Marsh", level=1)
        document.add_paragraph("The heron waits in shallow water. It strikes fast.")
        buffer = io.BytesIO()
        document.save(buffer)
        parser = UnstructuredParser()
        parsed = [
            parser.parse(buffer.getvalue(), filename="birds.docx"),
            parser.parse(b"<html><title>T</title><body><h1>Herons</h1><p>They wait.</p></body></html>",
                         filename="birds.html"),
        ]
        chunks = [RecursiveChunker(HFTokenizer()).split("d", "w", p) for p in parsed]
        print(json.dumps([[c.text for c in cs] for cs in chunks]))
        """,
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    texts = json.loads(probe.stdout.strip().splitlines()[-1])
    assert "heron waits" in " ".join(texts[0]) and "They wait." in " ".join(texts[1])


def test_the_built_root_is_reused_from_the_cache(staged: Path, image_root: ImageRoot) -> None:
    again = cached_image_root(parse_dockerfile(staged / DOCKERFILE), staged, PYTHON312, cache=IMAGE_CACHE)
    assert again.root == image_root.root and again.seconds == 0.0
