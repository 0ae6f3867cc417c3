"""SLURM: the sbatch script `inq slurm` writes and its consistency checks (inside the job:
`inqnet.cli.slurm.requeue`).

Lightning under SLURM needs `--nodes` = `trainer.num_nodes` and `--ntasks-per-node` = `trainer.devices`
with `srun` launching one process per device; a mismatch hangs at "initializing distributed", so the
numbers are checked here before anything is written. `--signal=SIGUSR1@90` + `--requeue` let
Lightning save `hpc_ckpt_*.ckpt` in the run folder, requeue the job, and resume it; a plain
`scontrol requeue` (SIGTERM) is covered by `SlurmRequeue`. The run folder is keyed on the job id
(`inqnet.cli.slurm.requeue.slurm_job`) so that every rank, and the requeued job, find the same folder.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inqnet.cli.config.overrides import override_map, parse_override
from inqnet.cli.errors import InqError
from inqnet.cli.slurm.requeue import INTERACTIVE_JOB_NAMES
from inqnet.modules.atomic import atomic_path

# Lightning strategies that start their own processes cannot run under srun's one task per device.
_SPAWNING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook", "dp")
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class SbatchSpec:
    """Everything an sbatch script for one `inq train` job needs."""

    recipe: str
    nodes: int
    gpus_per_node: int
    overrides: list[str] = field(default_factory=list)
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    cpus_per_task: int | None = None
    job_name: str | None = None
    workdir: str | None = None
    log_dir: str | None = None
    cpu_only: bool = False


def time_minutes(text: str) -> float:
    """SLURM's --time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in minutes."""
    if not _TIME.match(text):
        raise InqError(f"--time {text!r}: not a SLURM time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS)")
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
        parts = [int(p) for p in text.split(":")]
        hours, minutes, seconds = (parts + [0, 0])[:3]
        return days * 1440 + hours * 60 + minutes + seconds / 60
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 1:
        return float(parts[0])
    if len(parts) == 2:
        return parts[0] + parts[1] / 60
    return parts[0] * 60 + parts[1] + parts[2] / 60


def check_spec(spec: SbatchSpec, recipe_trainer: Mapping[str, Any] | None = None) -> None:
    """Refuse numbers that would make a job hang or be refused, with one line naming the culprit."""
    if spec.nodes < 1:
        raise InqError(f"--nodes {spec.nodes}: needs at least 1 node")
    if spec.gpus_per_node < 1:
        raise InqError(f"--gpus-per-node {spec.gpus_per_node}: needs at least 1 device per node")
    if spec.cpus_per_task is not None and spec.cpus_per_task < 1:
        raise InqError(f"--cpus-per-task {spec.cpus_per_task}: needs at least 1")
    given = override_map(spec.overrides)
    for key, want, flag in (
        ("trainer.num_nodes", spec.nodes, "--nodes"),
        ("trainer.devices", spec.gpus_per_node, "--gpus-per-node"),
    ):
        if key in given and str(given[key].value) != str(want):
            raise InqError(
                f"{given[key].text} disagrees with {flag} {want}: Lightning must expect exactly the "
                "processes SLURM starts, or the job hangs (drop the override)"
            )
    strategy = str(given["trainer.strategy"].value if "trainer.strategy" in given
                   else (recipe_trainer or {}).get("strategy", "auto"))
    if strategy in _SPAWNING_STRATEGIES:
        raise InqError(
            f"trainer.strategy={strategy} starts its own processes; under srun use trainer.strategy=ddp"
        )
    if spec.time is not None and time_minutes(spec.time) < 2:
        raise InqError(f"--time {spec.time}: under 2 minutes leaves no room for --signal=SIGUSR1@90")
    for value, flag in ((spec.partition, "--partition"), (spec.account, "--account"), (spec.job_name, "--job-name")):
        if value is not None and not _NAME.match(value):
            raise InqError(f"{flag} {value!r}: only letters, digits and . _ + - are allowed")
    if spec.job_name in INTERACTIVE_JOB_NAMES:
        raise InqError(f"--job-name {spec.job_name}: Lightning treats such jobs as interactive, not SLURM")


def job_name_for(recipe: str) -> str:
    """`inq-<recipe stem>`; never `bash`/`interactive`, which Lightning would not treat as SLURM."""
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "-", Path(recipe).stem).strip("-") or "run"
    return f"inq-{stem}"


def train_command(spec: SbatchSpec) -> list[str]:
    """The command each task runs: `inq train RECIPE trainer.num_nodes=N trainer.devices=G ...`."""
    placed = ("trainer.num_nodes", "trainer.devices")
    rest = [o for o in spec.overrides if parse_override(o).key not in placed]
    cmd = ["inq", "train", spec.recipe, f"trainer.num_nodes={spec.nodes}", f"trainer.devices={spec.gpus_per_node}"]
    return cmd + rest


def render_sbatch(spec: SbatchSpec, invocation: str | None = None) -> str:
    """The sbatch script's text."""
    name = spec.job_name or job_name_for(spec.recipe)
    log_dir = spec.log_dir or "."
    lines = ["#!/bin/bash"]
    if invocation:
        lines.append(f"# Written by: {invocation}")
    lines.append("# Lightning: --nodes = trainer.num_nodes, --ntasks-per-node = trainer.devices (one task per device).")
    directives = [
        f"--job-name={name}",
        f"--nodes={spec.nodes}",
        f"--ntasks-per-node={spec.gpus_per_node}",
    ]
    if spec.cpu_only:
        lines.append("# trainer.accelerator=cpu: no GPUs are requested; each task is one CPU DDP process.")
    else:
        directives.append(f"--gpus-per-node={spec.gpus_per_node}")
    if spec.cpus_per_task is not None:
        directives.append(f"--cpus-per-task={spec.cpus_per_task}")
    if spec.partition:
        directives.append(f"--partition={spec.partition}")
    if spec.time:
        directives.append(f"--time={spec.time}")
    if spec.account:
        directives.append(f"--account={spec.account}")
    directives += [
        "--signal=SIGUSR1@90",
        "--requeue",
        "--open-mode=append",
        f"--output={log_dir}/%x-%j.out",
    ]
    if spec.workdir:
        directives.append(f"--chdir={spec.workdir}")
    lines += [f"#SBATCH {d}" for d in directives]
    lines += [
        "",
        "set -euo pipefail",
        'echo "inq: job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST}, restart ${SLURM_RESTART_COUNT:-0}"',
        "srun " + " ".join(shlex.quote(part) for part in train_command(spec)),
        "",
    ]
    return "\n".join(lines)


def write_script(path: Path, text: str) -> None:
    """Write the script atomically and make it executable."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)


def submit(script: Path) -> str:
    """Hand the script to `sbatch`; return the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise InqError(f"{script}: sbatch is not on PATH (run --submit on a SLURM login node)")
    proc = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()[0]
        raise InqError(f"{script}: sbatch refused it: {first}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id:
        raise InqError(f"{script}: sbatch printed no job id")
    return job_id
