"""Prepares an offline pip source for `podman build` of the Dockerfile (scripts/container_check.sh).

The pins of requirements-lock.txt (torch's CUDA wheels alone are gigabytes) are mostly on this
machine's disk already, in the local indexes and wheel folders pip is configured with
(`pip config list`). This finds, per pin, a wheel there that the image's Python can install; it
downloads only the rest (once: they stay in the cache's wheelhouse), and writes a pip.conf that
points at the container-side mount points. Prints the `podman build` volume flags, one a line:

    HOST_DIR:CONTAINER_DIR:ro

Run with a Python of the same version as the image's (Debian bookworm: 3.11), so that the
platform tags of the wheels it accepts are the image's.
"""
from __future__ import annotations

import argparse
import html.parser
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

MOUNT_ROOT = "/mnt/inq-build"  # where the build sees the sources (never part of an image layer's files)
BUILD_REQUIREMENTS = ("setuptools>=68",)  # pyproject's [build-system] requires, for `pip install .`


class _Links(html.parser.HTMLParser):
    """The file names a PEP 503 project page links to."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.names.append(unquote(href.split("#")[0].rsplit("/", 1)[-1]))


def pip_sources() -> tuple[list[Path], list[Path]]:
    """The local (file:) indexes' folders and the wheel folders this machine's pip is set up with."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    indexes: list[Path] = []
    folders: list[Path] = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        entries = value.strip().strip("'\"").split()
        option = key.rsplit(".", 1)[-1]
        for entry in entries:
            if option in ("index-url", "extra-index-url") and entry.startswith("file:"):
                path = Path(unquote(urlparse(entry).path))
                if path.is_dir() and path not in indexes:
                    indexes.append(path)
            elif option == "find-links":
                path = Path(unquote(urlparse(entry).path)) if entry.startswith("file:") else Path(entry)
                if path.is_dir() and path not in folders:
                    folders.append(path)
    return indexes, folders


def lock_pins(lock: Path) -> list[Requirement]:
    """The `name==version` lines of the lock file."""
    pins = []
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins.append(Requirement(line))
    return pins


def _fits(filename: str, requirement: Requirement, supported: set[object]) -> bool:
    try:
        name, version, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return (name == canonicalize_name(requirement.name) and requirement.specifier.contains(version, prereleases=True)
            and not supported.isdisjoint(wheel_tags))


def _candidates(requirement: Requirement, indexes: list[Path], folders: list[Path]) -> list[str]:
    names: list[str] = []
    for index in indexes:
        page = index / canonicalize_name(requirement.name) / "index.html"
        if page.is_file():
            parser = _Links()
            parser.feed(page.read_text(errors="replace"))
            names += parser.names
    for folder in folders:
        names += [p.name for p in folder.glob("*.whl")]
    return names


def missing(requirements: list[Requirement], indexes: list[Path], folders: list[Path]) -> list[Requirement]:
    """The requirements no local wheel satisfies for this Python."""
    supported = set(sys_tags())
    return [r for r in requirements if not any(_fits(n, r, supported) for n in _candidates(r, indexes, folders))]


def write_pip_conf(path: Path, indexes: list[Path], folders: list[Path]) -> list[str]:
    """Writes the build's pip.conf (container paths); returns the volume flags that back it."""
    volumes, index_urls, links = [], [], []
    for number, index in enumerate(indexes):
        inside = f"{MOUNT_ROOT}/index{number}"  # the index's parent: its pages link to ../../files/
        volumes.append(f"{index.parent}:{inside}:ro")
        index_urls.append(f"file://{inside}/{index.name}")
    for number, folder in enumerate(folders):
        inside = f"{MOUNT_ROOT}/wheels{number}"
        volumes.append(f"{folder}:{inside}:ro")
        links.append(inside)
    lines = ["[global]", "disable-pip-version-check = true"]
    if index_urls:
        lines.append(f"index-url = {index_urls[0]}")
        if index_urls[1:]:
            lines.append(f"extra-index-url = {' '.join(index_urls[1:])}")
    else:
        lines.append("no-index = true")
    lines.append(f"find-links = {' '.join(links)}")
    tmp = path.with_name(f".{path.name}.tmp")  # beside it, then renamed: a crash leaves the old file whole
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return volumes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True, help="requirements-lock.txt")
    parser.add_argument("--cache", type=Path, required=True, help="folder for the wheelhouse and pip.conf")
    args = parser.parse_args(argv)
    wheelhouse = args.cache / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    indexes, folders = pip_sources()
    folders = [f for f in folders if f.resolve() != wheelhouse.resolve()] + [wheelhouse]
    wanted = lock_pins(args.lock) + [Requirement(r) for r in BUILD_REQUIREMENTS]
    fetch = missing(wanted, indexes, folders)
    if fetch:
        print(f"wheelhouse: downloading {len(fetch)} of {len(wanted)} wheels not on this disk "
              f"({', '.join(r.name for r in fetch[:6])}{', ...' if len(fetch) > 6 else ''})", file=sys.stderr)
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                              "-d", str(wheelhouse), *map(str, fetch)], capture_output=True, text=True)
        if got.returncode != 0:
            tail = (got.stderr.strip().splitlines() or ["pip download failed"])[-1]
            print(f"wheelhouse: cannot fetch the wheels the build needs: {tail}", file=sys.stderr)
            return 1
    conf = args.cache / "pip.conf"
    volumes = write_pip_conf(conf, indexes, folders)
    volumes.append(f"{conf}:{MOUNT_ROOT}/pip.conf:ro")
    print("\n".join(volumes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
