"""The rehearsal tier's fixtures: the cloud assemblies exactly as ``cdk deploy`` would synthesize them, the
loopback stand-ins for AWS, and one stood-up :class:`Rehearsal` per configuration."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cdk.cdk_synth import FULL_OVERRIDES, ROOT
from tests.rehearsal.cloud import Cloud, Postgres
from tests.rehearsal.dockerfile_check import ImageRoot, cached_image_root, parse_dockerfile
from tests.rehearsal.lambdas import python_for
from tests.rehearsal.pg_tls import TlsFront
from tests.rehearsal.platform import Rehearsal, Servers
from tests.rehearsal.template import CloudAssembly
from tests.rehearsal.wire import DataApi, ManagementApi, ModelApis

CLI = ROOT / "node_modules" / ".bin" / "cdk"
CACHE = ROOT / "build" / "rehearsal"
# The boto3 the AWS Lambda python3.12 runtime carries itself (below the layers on the import path).
RUNTIME_BOTO3 = "boto3==1.40.4"

pytestmark = pytest.mark.rehearsal


def cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


@pytest.fixture(scope="session")
def layer_dir() -> Path:
    return build_layer_dir()


def build_layer_dir() -> Path:
    """``build/layer`` as the deploy path builds it (``app.py``, ``quarry deploy``): pip only when the
    requirements changed, the quarry package copied in again when it changed."""
    from quarry.deployment.layer import ensure_layer

    out = ROOT / "build" / "layer"
    ensure_layer(ROOT, out)
    return out


@pytest.fixture(scope="session")
def runtime_packages() -> Path:
    return install_runtime_packages()


def install_runtime_packages() -> Path:
    """What the Lambda runtime provides beside the standard library (its boto3), cached."""
    target = CACHE / "runtime" / RUNTIME_BOTO3
    if not (target / "boto3").is_dir():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(target),
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--platform",
                "manylinux2014_x86_64",
                RUNTIME_BOTO3,
            ],
            check=True,
        )
    return target


def synth_with_cli(outdir: Path, config: dict[str, object] | None) -> CloudAssembly:
    assert CLI.is_file(), "the pinned CDK CLI is missing: run `npm ci` at the project root (make test does)"
    args = [str(CLI), "synth", "--quiet", "--no-notices", "--output", str(outdir)]
    if config:
        config_file = outdir.parent / f"{outdir.name}.json"
        config_file.write_text(json.dumps(config))
        args += ["-c", f"config={config_file}"]
    result = subprocess.run(args, cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return CloudAssembly(outdir, "Quarry")


@pytest.fixture(scope="session")
def default_assembly(layer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    return synth_with_cli(tmp_path_factory.mktemp("assembly") / "default", None)


def full_config() -> dict[str, Any]:
    """The full configuration, with the embedding endpoint's model archive left at its default: the
    ``model.tar.gz`` synthesis builds and stages, so the rehearsal serves exactly what would be uploaded."""
    config = copy.deepcopy(FULL_OVERRIDES)
    config["sagemaker"]["embedding"]["model_data"] = "sagemaker_models/build/model.tar.gz"  # the default
    return config


@pytest.fixture(scope="session")
def full_assembly(layer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CloudAssembly:
    return synth_with_cli(tmp_path_factory.mktemp("assembly") / "full", full_config())


@pytest.fixture(scope="session")
def postgres() -> Iterator[tuple[str, Postgres]]:
    """The rehearsal's Aurora: PostgreSQL + pgvector behind a TLS front, with the secret's user."""
    from quarry.adapters.embedded_pg import EmbeddedPostgres
    from tests.conftest import pg_data_dir

    with pg_data_dir() as data_dir:
        yield from _postgres(EmbeddedPostgres(data_dir, database="quarry", listen="tcp"))


def _postgres(server: Any) -> Iterator[tuple[str, Postgres]]:
    dsn = server.start()
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE quarry_admin LOGIN SUPERUSER")
    port = int(psycopg.conninfo.conninfo_to_dict(dsn)["port"])  # type: ignore[arg-type]
    front = TlsFront(port)
    yield dsn, Postgres("127.0.0.1", front.port, "quarry")
    front.close()
    server.stop(force=True)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """One moto server process per configuration, so two templates' resources never meet (moto's state is
    per process: two threaded servers in this one would share it)."""
    import urllib.request

    from tests.platform_fixtures import free_port

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with {process.returncode}")
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto server did not start")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def sagemaker_endpoint(full_assembly: CloudAssembly, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The embedding endpoint's model archive as staged in the full assembly, extracted as SageMaker does
    (``/opt/ml/model``) and served by its own ``code/inference.py``: returns ``(body, content_type, accept)
    -> bytes``, the inference toolkit's input_fn -> predict_fn -> output_fn."""
    archive = full_assembly.model_archive()
    model_dir = tmp_path_factory.mktemp("opt-ml-model")
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    spec = importlib.util.spec_from_file_location("rehearsal_sm_inference", model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    inference = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = inference
    spec.loader.exec_module(inference)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    registry = inference.model_fn(str(model_dir))

    def handle(body: bytes, content_type: str, accept: str) -> bytes:
        request = inference.input_fn(body, content_type)
        return bytes(inference.output_fn(inference.predict_fn(request, registry), accept))

    return handle


@pytest.fixture(scope="session")
def servers(postgres: tuple[str, Postgres]) -> Iterator[Servers]:
    """The loopback stand-ins and moto for the default configuration."""
    from quarry.adapters.st_models import SentenceTransformerEmbedder, packaged_minilm_path
    from tests.aws.rds_data_emulator import DataApiEmulator

    embedder = SentenceTransformerEmbedder(path=packaged_minilm_path(), precision="fp32")
    emulator = DataApiEmulator(postgres[0])
    with moto_server() as moto:
        out = Servers(
            moto=moto,
            management=ManagementApi(),
            models=ModelApis(embedder.embed_documents),
            data_api=DataApi(emulator),
        )
        yield out
        for server in (out.management, out.models, out.data_api):
            server.close()
    emulator.close()


@pytest.fixture(scope="session")
def default_rehearsal(
    default_assembly: CloudAssembly,
    servers: Servers,
    postgres: tuple[str, Postgres],
    runtime_packages: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rehearsal]:
    cloud = Cloud(default_assembly.template, servers.moto, postgres[1]).create()
    rehearsal = Rehearsal(default_assembly, cloud, servers, tmp_path_factory.mktemp("default-run"), runtime_packages)
    yield rehearsal
    rehearsal.close()


@pytest.fixture(scope="session")
def full_rehearsal(
    full_assembly: CloudAssembly,
    servers: Servers,
    postgres: tuple[str, Postgres],
    runtime_packages: Path,
    sagemaker_endpoint: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rehearsal]:
    """The full configuration on its own moto, with the SageMaker endpoint served by its staged archive."""
    with moto_server() as moto:
        own = dataclasses.replace(servers, moto=moto, models=ModelApis(servers.models.embed, sagemaker_endpoint))
        cloud = Cloud(full_assembly.template, moto, postgres[1]).create()
        rehearsal = Rehearsal(full_assembly, cloud, own, tmp_path_factory.mktemp("full-run"), runtime_packages)
        yield rehearsal
        rehearsal.close()
        own.models.close()


@pytest.fixture(scope="session")
def image_cache() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def batch_image(default_assembly: CloudAssembly, image_cache: Path) -> ImageRoot:
    """The Batch image's filesystem and Python environment, built from its own Dockerfile and staged context."""
    ((context, dockerfile),) = default_assembly.docker_images()
    return cached_image_root(
        parse_dockerfile(context / dockerfile), context, python_for("python3.12"), cache=image_cache / "image-roots"
    )
