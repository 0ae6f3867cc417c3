"""The built wheel adds one import name, `inqnet`, and installs beside PyPI's `kernels` package
(whose top-level name our kernels folder used to take): both import and `inq --help` works."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)


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


@pytest.mark.slow
def test_wheel_installs_beside_pypi_kernels(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    assert _run(python, "-m", "pip", "install", "-q", "--no-deps", wheel).returncode == 0
    fetched = _run(python, "-m", "pip", "install", "-q", "kernels")
    if fetched.returncode != 0:
        pytest.skip(f"PyPI's `kernels` cannot be installed here: {fetched.stderr.strip().splitlines()[-1:]}")
    # inq's own dependencies (torch, typer, ...) come from this interpreter's site-packages, added
    # after the venv's own: a path line in a .pth file (its .pth files, e.g. editable finders, stay unread).
    ours = sysconfig.get_paths()["purelib"]
    theirs = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(theirs) / "zz_inq_dependencies.pth").write_text(ours + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = _run(python, "-c", "import kernels, inqnet.kernels.packing, inqnet.cli.app; "
                 "print(kernels.__file__); print(inqnet.kernels.__file__)", cwd=empty)
    assert probe.returncode == 0, probe.stderr
    pypi_kernels, our_kernels = probe.stdout.split()
    assert Path(theirs) in Path(pypi_kernels).parents and Path(theirs) in Path(our_kernels).parents
    assert "inqnet" not in Path(pypi_kernels).parts
    helped = _run(env_dir / "bin" / "inq", "--help", cwd=empty)
    assert helped.returncode == 0 and "Usage: inq" in helped.stdout, helped.stderr
