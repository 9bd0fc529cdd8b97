"""`cdk synth` on a fresh clone: app.py builds the Lambda layer itself, redoing only what changed.

pip is the one external CLI intercepted (it would fetch manylinux wheels from the package index): the test
runner "installs" one fake dependency, and everything else (the package copy, the stamps, the synthesis)
runs for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quarry.deployment.layer import (
    PACKAGE_STAMP,
    REQUIREMENTS_STAMP,
    LayerState,
    ensure_layer,
    ensure_project_layer,
    layer_state,
)
from quarry.errors import InvalidInput
from tests.deployment.deploy_fixtures import ROOT, Runner


def _checkout(base: Path) -> Path:
    """A project with its own small quarry package (so a test may edit it) and the real pyproject.toml."""
    root = base / "checkout"
    package = root / "layers" / "quarry" / "python" / "quarry"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""quarry"""\n')
    (package / "settings.py").write_text("VALUE = 1\n")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_a_missing_layer_is_built_once(tmp_path: Path) -> None:
    root, runner = _checkout(tmp_path), Runner()
    out = root / "build" / "layer"
    assert ensure_layer(root, out, run=runner, log=lambda line: None) is LayerState.MISSING
    assert runner.programs() == ["pip"]
    pip = runner.calls[0].argv
    assert pip[pip.index("--target") + 1] == str(out / "python") and "--only-binary=:all:" in pip
    assert (out / "python" / "fake_dependency" / "__init__.py").is_file()
    assert (out / "python" / "quarry" / "settings.py").read_text() == "VALUE = 1\n"
    assert (out / REQUIREMENTS_STAMP).is_file() and (out / PACKAGE_STAMP).is_file()

    assert ensure_layer(root, out, run=runner, log=lambda line: None) is LayerState.FRESH
    assert len(runner.calls) == 1  # nothing to do


def test_a_changed_package_is_copied_again_without_pip(tmp_path: Path) -> None:
    root, runner = _checkout(tmp_path), Runner()
    out = root / "build" / "layer"
    ensure_layer(root, out, run=runner, log=lambda line: None)
    (root / "layers" / "quarry" / "python" / "quarry" / "settings.py").write_text("VALUE = 2\n")
    (root / "layers" / "quarry" / "python" / "quarry" / "new.py").write_text("")

    assert layer_state(root, out) is LayerState.PACKAGE_STALE
    said: list[str] = []
    assert ensure_layer(root, out, run=runner, log=said.append) is LayerState.PACKAGE_STALE
    assert len(runner.calls) == 1  # no second pip run: offline
    assert "(offline)" in said[0]
    assert (out / "python" / "quarry" / "settings.py").read_text() == "VALUE = 2\n"
    assert (out / "python" / "quarry" / "new.py").is_file()
    assert (out / "python" / "fake_dependency").is_dir()  # the dependencies stay
    assert layer_state(root, out) is LayerState.FRESH


def test_changed_requirements_rebuild_the_dependencies(tmp_path: Path) -> None:
    root, runner = _checkout(tmp_path), Runner()
    out = root / "build" / "layer"
    ensure_layer(root, out, run=runner, log=lambda line: None)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.26",', '"numpy>=2.0",'))
    assert layer_state(root, out) is LayerState.MISSING
    ensure_layer(root, out, run=runner, log=lambda line: None)
    assert runner.programs() == ["pip", "pip"]
    assert "numpy>=2.0" in runner.calls[1].argv


def test_a_configured_layer_folder_is_left_as_it_is(tmp_path: Path) -> None:
    root, runner = _checkout(tmp_path), Runner()
    own = tmp_path / "ci-layer"
    assert ensure_project_layer(root, own, run=runner, log=lambda line: None) is None
    assert runner.calls == [] and not own.exists()


def test_a_failed_pip_says_what_to_do(tmp_path: Path) -> None:
    root = _checkout(tmp_path)

    def failing(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, argv)

    with pytest.raises(InvalidInput, match=r"pip exited with 1.*python scripts/build_layer.py"):
        ensure_project_layer(root, root / "build" / "layer", run=failing, log=lambda line: None)


def _fresh_clone(base: Path) -> Path:
    """The working tree as `git clone` would give it (tracked and new files; nothing ignored, so no build/)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    clone = base / "clone"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if name.startswith("frontend/") or not source.is_file():
            continue  # the UI is optional for synthesis; deleted-but-tracked files are gone
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, clone / name)
    return clone


# app.py as `cdk synth` runs it: its own process, told the context and the output folder by environment (in a
# process that already started the jsii kernel, those variables would not reach it). pip is intercepted in it.
_SYNTH = """
import json, runpy, subprocess, sys
from tests.deployment.deploy_fixtures import Runner
runner = Runner()
subprocess.run = runner
runpy.run_path(sys.argv[1], run_name="__main__")
print("PROGRAMS=" + json.dumps(runner.programs()))
"""


@pytest.mark.cdk
@pytest.mark.slow
def test_cdk_synth_on_a_fresh_clone_builds_the_layer(tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path)
    assert not (clone / "build").exists()
    context = json.loads((clone / "cdk.json").read_text())["context"]
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "cdk.out")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "layers" / "quarry" / "python")])
    done = subprocess.run(
        [sys.executable, "-c", _SYNTH, str(clone / "app.py")], cwd=clone, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [programs] = [line for line in done.stdout.splitlines() if line.startswith("PROGRAMS=")]
    assert json.loads(programs.removeprefix("PROGRAMS=")) == ["pip"]
    assert layer_state(clone, clone / "build" / "layer") is LayerState.FRESH
    template = json.loads((tmp_path / "cdk.out" / "Quarry.template.json").read_text())
    [layer] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::LayerVersion" and "quarry package" in r["Properties"].get("Description", "")
    ]
    asset = tmp_path / "cdk.out" / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"
    assert (asset / "python" / "quarry" / "__init__.py").is_file()
    assert (asset / "python" / "fake_dependency" / "__init__.py").is_file()  # what pip installed ships
