"""The container built and run here: scripts/container_check.sh (podman on a Debian base made by
debootstrap) builds the Dockerfile, trains the quickstart in it as the non-root user and checks the
run folder on the host. Where podman cannot run, the script says why in one line and the test is
skipped with that line. The offline pip source it prepares (wheelhouse.py) is tested on its own."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "container_check.sh"
CANNOT = 77  # the script's exit code for "this machine cannot run it"


def _wheelhouse():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("wheelhouse", ROOT / "scripts" / "container" / "wheelhouse.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_finds_only_pins_without_a_fitting_local_wheel(tmp_path: Path) -> None:
    wheelhouse = _wheelhouse()
    index = tmp_path / "pypi" / "simple"
    (index / "torch").mkdir(parents=True)
    (index / "torch" / "index.html").write_text(
        '<a href="../../files/torch-2.14.1-py3-none-any.whl#sha256=00">torch-2.14.1-py3-none-any.whl</a>')
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name in ("typer-0.29.2-py3-none-any.whl", "rich-15.0.0-cp27-cp27m-win32.whl", "numpy-2.4.5-py3-none-any.whl"):
        (folder / name).write_text("")
    pins = [Requirement(r) for r in ("torch==2.14.1", "Typer==0.29.2", "rich==15.0.0", "numpy==2.4.6", "wandb==0.31.0")]
    left = [r.name for r in wheelhouse.missing(pins, [index], [folder])]
    assert left == ["rich", "numpy", "wandb"]  # rich: wrong platform; numpy: other version; wandb: absent


def test_pip_conf_points_at_the_mounts(tmp_path: Path) -> None:
    wheelhouse = _wheelhouse()
    index, folder = tmp_path / "pypi" / "simple", tmp_path / "wheels"
    conf = tmp_path / "pip.conf"
    volumes = wheelhouse.write_pip_conf(conf, [index], [folder])
    root = wheelhouse.MOUNT_ROOT
    assert volumes == [f"{tmp_path / 'pypi'}:{root}/index0:ro", f"{folder}:{root}/wheels0:ro"]
    text = conf.read_text()
    assert f"index-url = file://{root}/index0/simple\n" in text and f"find-links = {root}/wheels0\n" in text
    assert "no-index" not in text
    wheelhouse.write_pip_conf(conf, [], [folder])
    assert "no-index = true\n" in conf.read_text()


@pytest.mark.slow
@pytest.mark.container
def test_container_check_builds_and_runs_the_quickstart() -> None:
    env = {**os.environ, "PYTHON": sys.executable}  # the host side (wheelhouse, checkpoint check) runs on ours
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    lines = proc.stdout.strip().splitlines() or [proc.stderr.strip()]
    if proc.returncode == CANNOT:
        pytest.skip(lines[-1])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert lines[-1].startswith("container check passed"), lines[-1]
    out = proc.stdout
    assert re.search(r"^build time: \d+ s$", out, re.M) and re.search(r"^run time: \d+ s", out, re.M)
    listing = {line.split()[-1]: line.split()[1] for line in out.splitlines() if re.match(r"^[-d][rwx-]{9} ", line)}
    run = next(name for name in listing if re.fullmatch(r"quickstart/\d{8}-\d{6}", name))
    for name in ("summary.json", "best.ckpt", "last.ckpt", "resolved.yaml"):
        assert listing[f"{run}/{name}"] == "10001:10001", listing
    assert "load with weights_only=True" in out
