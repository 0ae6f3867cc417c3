"""`inq slurm RECIPE --nodes N --gpus-per-node G ...`: an sbatch script for a multi-node run (and `--submit`)."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from inqnet.cli.config.load import resolved_recipe
from inqnet.cli.config.overrides import get_path
from inqnet.cli.slurm.sbatch import SbatchSpec, check_spec, job_name_for, render_sbatch, submit, write_script


def slurm(
    recipe: Path = typer.Argument(..., help="The recipe YAML each task trains."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides for `inq train`."),
    nodes: int = typer.Option(..., "--nodes", "-N", help="Nodes; becomes trainer.num_nodes."),
    gpus_per_node: int = typer.Option(..., "--gpus-per-node", "-G", help="Devices (tasks) per node; becomes trainer.devices."),
    partition: Optional[str] = typer.Option(None, "--partition", "-p", help="SLURM partition."),
    time: Optional[str] = typer.Option(None, "--time", "-t", help="Time limit, e.g. 2-00:00:00."),
    account: Optional[str] = typer.Option(None, "--account", "-A", help="SLURM account to charge."),
    cpus_per_task: Optional[int] = typer.Option(None, "--cpus-per-task", "-c", help="CPUs per task (data loaders)."),
    job_name: Optional[str] = typer.Option(None, "--job-name", "-J", help="Job name (default inq-<recipe>)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Script path (default slurm/<job>-<N>x<G>.sbatch)."),
    do_submit: bool = typer.Option(False, "--submit", help="Hand the script to sbatch and print the job id."),
) -> None:
    """Write an sbatch script whose tasks run `srun inq train RECIPE trainer.num_nodes=N trainer.devices=G ...`."""
    extra = list(overrides or [])
    name = job_name or job_name_for(str(recipe))
    script = (out or Path("slurm") / f"{name}-{nodes}x{gpus_per_node}.sbatch").absolute()
    spec = SbatchSpec(
        recipe=str(recipe),
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        overrides=extra,
        partition=partition,
        time=time,
        account=account,
        cpus_per_task=cpus_per_task,
        job_name=name,
        workdir=str(Path.cwd()),
        log_dir=str(script.parent),
    )
    check_spec(spec)  # the numbers first: cheap, and the usual mistake
    data = resolved_recipe(recipe, extra)
    spec.cpu_only = str(get_path(data, "trainer.accelerator", "auto")).lower() == "cpu"
    check_spec(spec, data.get("trainer") or {})
    invocation = "inq slurm " + " ".join(
        shlex.quote(a)
        for a in [str(recipe), "--nodes", str(nodes), "--gpus-per-node", str(gpus_per_node), *extra]
    )
    write_script(script, render_sbatch(spec, invocation))
    typer.echo(f"wrote {script}")
    if do_submit:
        job_id = submit(script)
        typer.echo(f"submitted job {job_id}")
        typer.echo(job_id)


def register(app: typer.Typer) -> None:
    app.command("slurm")(slurm)
