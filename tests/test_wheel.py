"""The built wheel adds one import name, `inqnet`, and installs beside PyPI's `kernels` package
(whose top-level name our kernels folder used to take): both import and `inq --help` works. It
carries the shipped recipes: installed outside the repository, `inq train quickstart` runs from an
empty folder, `inq recipes` lists it and `inq recipes --copy` writes it out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)


def _venv_with_wheel(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv holding only the wheel (no dependencies); returns its python."""
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "-q", "--no-deps", wheel)
    assert installed.returncode == 0, installed.stderr
    return python


def _reuse_our_dependencies(python: Path) -> None:
    """inq's dependencies (torch, typer, ...) come from this interpreter's site-packages, added
    after the venv's own by a path line in a .pth file (so its .pth files, e.g. the editable
    finder of this checkout, stay unread): fast and offline."""
    ours = sysconfig.get_paths()["purelib"]
    theirs = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(theirs) / "zz_inq_dependencies.pth").write_text(ours + "\n")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", out)
    assert built.returncode == 0, built.stderr
    return next(out.glob("inqnet-*.whl"))


def test_wheel_has_one_import_root(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"inqnet"}
    for package in ("cli", "modules", "kernels"):
        assert f"inqnet/{package}/__init__.py" in names


def test_wheel_carries_the_shipped_recipes(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    carried = {Path(name).name for name in archive.namelist() if name.startswith("inqnet/recipes/")}
    assert carried == {path.name for path in (ROOT / "recipes").glob("*.yaml")}
    assert archive.read("inqnet/recipes/quickstart.yaml") == (ROOT / "recipes" / "quickstart.yaml").read_bytes()


@pytest.mark.slow
def test_wheel_installs_beside_pypi_kernels(wheel: Path, tmp_path: Path) -> None:
    python = _venv_with_wheel(wheel, tmp_path / "venv")
    fetched = _run(python, "-m", "pip", "install", "-q", "kernels")
    if fetched.returncode != 0:
        pytest.skip(f"PyPI's `kernels` cannot be installed here: {fetched.stderr.strip().splitlines()[-1:]}")
    _reuse_our_dependencies(python)
    theirs = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = _run(python, "-c", "import kernels, inqnet.kernels.packing, inqnet.cli.app; "
                 "print(kernels.__file__); print(inqnet.kernels.__file__)", cwd=empty)
    assert probe.returncode == 0, probe.stderr
    pypi_kernels, our_kernels = probe.stdout.split()
    assert Path(theirs) in Path(pypi_kernels).parents and Path(theirs) in Path(our_kernels).parents
    assert "inqnet" not in Path(pypi_kernels).parts
    helped = _run(python.with_name("inq"), "--help", cwd=empty)
    assert helped.returncode == 0 and "Usage: inq" in helped.stdout, helped.stderr


@pytest.mark.slow
def test_installed_wheel_trains_quickstart_by_name(wheel: Path, tmp_path: Path) -> None:
    python = _venv_with_wheel(wheel, tmp_path / "venv")
    _reuse_our_dependencies(python)
    inq = python.with_name("inq")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    where = _run(python, "-c", "import inqnet.cli.config.shipped as s; print(s.shipped_folder())", cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stderr
    assert tmp_path / "venv" in Path(where.stdout.strip()).parents, where.stdout  # the wheel's, not the checkout's
    empty = tmp_path / "empty"
    empty.mkdir()
    # A short quickstart: one float epoch and one epoch per INQ stage (the full recipe takes ~25 s).
    trained = _run(inq, "train", "quickstart", "inq.float_epochs=1", "inq.epochs_per_stage=1", "scheduler.t_max=1",
                   cwd=empty, env=env)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    summaries = list((empty / "runs" / "quickstart").glob("*/summary.json"))
    assert len(summaries) == 1, sorted(str(p.relative_to(empty)) for p in empty.rglob("*"))
    summary = json.loads(summaries[0].read_text())
    assert summary and isinstance(summary, dict)
    listed = _run(inq, "recipes", cwd=empty, env=env)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split("│")[1].strip() == "quickstart" for line in listed.stdout.splitlines() if "│" in line)
    copied = _run(inq, "recipes", "--copy", "quickstart", ".", cwd=empty, env=env)
    assert copied.returncode == 0, copied.stderr
    assert (empty / "quickstart.yaml").read_text() == (ROOT / "recipes" / "quickstart.yaml").read_text()
    again = _run(inq, "recipes", "--copy", "quickstart", ".", cwd=empty, env=env)
    assert again.returncode == 2 and again.stderr == "error: quickstart.yaml: already exists (pass --force to overwrite it)\n"
