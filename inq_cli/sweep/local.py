"""W&B sweep files for a recipe, and running a grid here point after point (`inq sweep --local`).

The sweep's command is `inq train RECIPE ${args_no_hyphens}`: every rank of a DDP run then sees the
swept values on its command line (under DDP only rank zero would see `wandb.config`).
A local sweep keeps a ledger (`points.json`) so that a second call skips the finished points.
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from inqnet.cli.sweep.grid import GridAxis, control_axes, expand, point_name, point_overrides
from inqnet.modules.atomic import write_atomic

SWEEP_COMMAND_MACRO = "${args_no_hyphens}"
LEDGER = "points.json"


def sweep_config(
    recipe: str,
    axes: list[GridAxis],
    *,
    name: str,
    project: str | None = None,
    entity: str | None = None,
    metric: str | None = None,
    goal: str = "maximize",
    fixed: list[str] | None = None,
) -> dict[str, Any]:
    """The W&B sweep configuration (grid search) for a recipe and its axes.

    `fixed` overrides go on every point's command line, before the swept values.
    """
    config: dict[str, Any] = {"name": name, "program": recipe, "method": "grid"}
    if project:
        config["project"] = project
    if entity:
        config["entity"] = entity
    if metric:
        config["metric"] = {"name": metric, "goal": goal}
    config["parameters"] = {axis.key: {"values": list(axis.values)} for axis in axes}
    config["command"] = ["inq", "train", recipe, *(fixed or []), SWEEP_COMMAND_MACRO]
    return config


def write_yaml_atomic(path: Path, data: dict[str, Any], header: str = "") -> None:
    """Write YAML through a temporary file so a reader never sees half a file."""
    write_atomic(path, header + yaml.safe_dump(data, sort_keys=False))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file (the ledger survives an interrupt mid-write)."""
    write_atomic(path, json.dumps(data, indent=2) + "\n")


@dataclass
class PointState:
    """What the ledger knows about one grid point."""

    name: str
    values: dict[str, Any]
    overrides: list[str]
    status: str = "pending"  # pending | finished | failed
    returncode: int | None = None
    run_dir: str | None = None


@dataclass
class LocalSweep:
    """A grid run here: one output root per point under `out_dir/runs/<point>`."""

    recipe: str
    axes: list[GridAxis]
    out_dir: Path
    fixed: list[str] = field(default_factory=list)
    control: bool = False  # also one float control per seed and configuration (see grid.control_axes)

    @property
    def ledger_path(self) -> Path:
        return self.out_dir / LEDGER

    def point_root(self, name: str) -> Path:
        return self.out_dir / "runs" / name

    def load_ledger(self) -> dict[str, PointState]:
        """Earlier results of this sweep; an unreadable ledger counts as empty (points rerun)."""
        try:
            raw = json.loads(self.ledger_path.read_text(encoding="utf-8"))
            return {name: PointState(**state) for name, state in raw.get("points", {}).items()}
        except (OSError, ValueError, TypeError):
            return {}

    def save_ledger(self, states: dict[str, PointState]) -> None:
        write_json_atomic(
            self.ledger_path,
            {"recipe": self.recipe, "fixed": self.fixed, "control": self.control,
             "points": {n: asdict(s) for n, s in states.items()}},
        )

    def points(self) -> list[PointState]:
        """The grid's points in W&B order, then (with `control`) the controls."""
        grids = [self.axes, control_axes(self.axes)] if self.control else [self.axes]
        out = []
        for values in (v for axes in grids for v in expand(axes)):
            out.append(PointState(name=point_name(values), values=values, overrides=point_overrides(values)))
        return out

    def is_finished(self, state: PointState | None) -> bool:
        """Finished = the ledger says so and its run folder still holds its resolved recipe."""
        return bool(
            state
            and state.status == "finished"
            and state.run_dir
            and (Path(state.run_dir) / "resolved.yaml").is_file()
        )

    def command(self, point: PointState, train_cmd: list[str]) -> list[str]:
        """The `inq train` command of one point: recipe, fixed overrides, its output root, its values."""
        root = self.point_root(point.name)
        return [*train_cmd, self.recipe, *self.fixed, f"output_dir={root}", *point.overrides]

    def run(
        self,
        train_cmd: list[str] | None = None,
        echo: Callable[[str], None] = print,
        env: dict[str, str] | None = None,
        jobs: int = 1,
    ) -> list[PointState]:
        """Run every unfinished point (`jobs` at a time, each its own `inq train` process); return
        every point's final state, in grid order. The ledger is written after each point ends."""
        train_cmd = train_cmd or [sys.executable, "-m", "inqnet.cli.app", "train"]
        states = self.load_ledger()
        grid = self.points()
        results: dict[str, PointState] = {}
        todo: list[tuple[int, PointState]] = []
        for index, point in enumerate(grid, start=1):
            known = states.get(point.name)
            if self.is_finished(known):
                echo(f"[{index}/{len(grid)}] {point.name}: finished earlier, skipped ({known.run_dir})")
                results[point.name] = known
            else:
                todo.append((index, point))

        def one(index: int, point: PointState) -> PointState:
            root = self.point_root(point.name)
            before = set(find_resolved(root))
            cmd = self.command(point, train_cmd)
            echo(f"[{index}/{len(grid)}] {point.name}: {' '.join(cmd)}")
            output = subprocess.DEVNULL if jobs > 1 else None  # parallel runs: their run folders hold the logs
            proc = subprocess.run(cmd, env=env, check=False, stdout=output)
            point.returncode = proc.returncode
            new_runs = sorted(set(find_resolved(root)) - before, key=lambda p: p.stat().st_mtime)
            point.run_dir = str(new_runs[-1].parent) if new_runs else None
            point.status = "finished" if proc.returncode == 0 and point.run_dir else "failed"
            return point

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(one, index, point): index for index, point in todo}
            for future in as_completed(futures):
                point = future.result()
                states[point.name] = results[point.name] = point
                self.save_ledger(states)
                echo(f"[{futures[future]}/{len(grid)}] {point.name}: {point.status} (exit {point.returncode})")
        return [results[point.name] for point in grid]


def find_resolved(root: Path) -> list[Path]:
    """Every run's `resolved.yaml` below a folder (none when it does not exist)."""
    if not root.is_dir():
        return []
    return sorted(root.rglob("resolved.yaml"))
