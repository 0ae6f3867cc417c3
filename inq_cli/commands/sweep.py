"""`inq sweep RECIPE --grid KEY=VALUES ...`: a W&B sweep file, or (`--local`) the grid run here."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from inqnet.cli.errors import InqError
from inqnet.cli.sweep.grid import CONTROL_KEY, control_axes, expand, parse_axes, point_overrides
from inqnet.cli.config.load import resolved_recipe
from inqnet.cli.config.overrides import get_path, override_map
from inqnet.cli.sweep.local import LocalSweep, sweep_config, write_yaml_atomic
from inqnet.cli.sweep.results import collect_results

_GOALS = ("maximize", "minimize")


def sweep(
    recipe: Path = typer.Argument(..., help="The recipe YAML to sweep."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides fixed for every point."),
    grid: list[str] = typer.Option(..., "--grid", "-g", help="KEY=LO..HI or KEY=A,B,C; repeat for more axes."),
    local: bool = typer.Option(False, "--local", help="Run the grid here, point after point, skipping finished ones."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="With --local: points trained at once (one process "
                             "each; recipes with `threads: 1` use one core each)."),
    control: bool = typer.Option(False, "--control", help="Also train one float control (inq.control=true) per seed "
                                 "and configuration: the grid without inq.bits (sweep_control.yaml for W&B)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Sweep folder (default sweeps/<recipe>)."),
    metric: Optional[str] = typer.Option(None, help="Metric the W&B sweep reports on, e.g. val_acc."),
    goal: str = typer.Option("maximize", help="maximize | minimize (with --metric)."),
    project: Optional[str] = typer.Option(None, help="W&B project (default: the recipe's logger.wandb.project)."),
    entity: Optional[str] = typer.Option(None, help="W&B entity (default: the recipe's logger.wandb.entity)."),
) -> None:
    """Write a W&B grid sweep whose command is `inq train RECIPE ${args_no_hyphens}`, or run it here."""
    if goal not in _GOALS:
        raise InqError(f"--goal {goal!r}: expected maximize or minimize")
    axes = parse_axes(grid)
    fixed = list(overrides or [])
    fixed_keys = override_map(fixed)
    for axis in axes:
        if axis.key in fixed_keys:
            raise InqError(f"{axis.key}: both swept (--grid) and fixed ({fixed_keys[axis.key].text})")
    if "output_dir" in fixed_keys and local:
        raise InqError("output_dir: a local sweep places each point's runs itself (use --out)")
    if control and (CONTROL_KEY in fixed_keys or any(a.key == CONTROL_KEY for a in axes)):
        raise InqError(f"--control: {CONTROL_KEY} is set by --control itself (drop it from the grid and overrides)")
    data = resolved_recipe(recipe, fixed)
    if control and get_path(data, "inq.enabled") is False:
        raise InqError(f"--control: {recipe} trains no INQ (inq.enabled: false), so there is nothing to control")
    grids = [axes, control_axes(axes)] if control else [axes]
    for point in (p for g in grids for p in expand(g)):  # every point must be a valid recipe before any runs
        resolved_recipe(recipe, fixed + point_overrides(point))
    recipe_arg = str(recipe)
    out_dir = out or Path("sweeps") / recipe.stem
    config = sweep_config(
        recipe_arg,
        axes,
        name=f"{recipe.stem}-" + "-".join(a.key for a in axes),
        project=project or get_path(data, "logger.wandb.project"),
        entity=entity or get_path(data, "logger.wandb.entity"),
        metric=metric,
        goal=goal,
        fixed=fixed,
    )
    sweep_yaml = out_dir / "sweep.yaml"
    header = f"# W&B sweep for {recipe_arg}: wandb sweep {sweep_yaml}, then wandb agent <the sweep id it prints>\n"
    write_yaml_atomic(sweep_yaml, config, header)
    typer.echo(f"wrote {sweep_yaml} ({len(expand(axes))} points); start it with: wandb sweep {sweep_yaml}")
    if control:
        controls = control_axes(axes)
        control_yaml = out_dir / "sweep_control.yaml"
        control_config = sweep_config(recipe_arg, controls, name=f"{config['name']}-control",
                                      project=config.get("project"), entity=config.get("entity"), metric=metric,
                                      goal=goal, fixed=fixed)
        write_yaml_atomic(control_yaml, control_config,
                          f"# Float controls for {sweep_yaml} (one per seed and configuration): wandb sweep {control_yaml}\n")
        typer.echo(f"wrote {control_yaml} ({len(expand(controls))} controls); start it with: wandb sweep {control_yaml}")
    if not local:
        return
    runner = LocalSweep(recipe=recipe_arg, axes=axes, out_dir=out_dir, fixed=fixed, control=control)
    states = runner.run(train_cmd=[sys.executable, "-m", "inqnet.cli.app", "train"], echo=typer.echo, jobs=jobs)
    table, files = collect_results(states, axes, out_dir, metric)
    typer.echo(table)
    typer.echo("results: " + ", ".join(str(p) for p in files))
    failed = [s.name for s in states if s.status != "finished"]
    if failed:
        typer.echo(f"{len(failed)} point(s) failed: {', '.join(failed)} (rerun to retry them)", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
