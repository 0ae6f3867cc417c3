"""`inq annotate`: Suggestive Annotation with (optionally INQ-quantized) suggestive FCNs.

A run lives in `<output_dir>/<recipe name>/<timestamp>/` (and `<output_dir>/<recipe name>/latest`
points at the newest) and holds `resolved.yaml`, `suggestions.json`, `descriptors_round<r>.npz`
(ids, descriptors and uncertainties of the unannotated pool round r scored), `state.json` (the
annotated set and the rounds done, rewritten atomically after each round: the resume point),
`fcns.pt` (the FCNs trained for the next round) and, once finished, `summary.json`.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from inqnet.cli.annotate.fcns import TrainedFCN, fcn_seed, load_fcns, save_fcns, train_fcn
from inqnet.cli.errors import InqError
from inqnet.cli.config.schema import AnnotateSection, Recipe
from inqnet.cli.config.load import save_resolved
from inqnet.modules.atomic import write_atomic
from inqnet.cli.run.train import build_datamodule, quiet_lightning_noise
from inqnet.cli.run.folder import make_run_dir
from inqnet.modules.datamodules.glas import scan_glas
from inqnet.modules.datamodules.glas_annotated import Pair, annotated_pairs, image_sizes, load_train_pairs
from inqnet.modules.suggestive.items import Suggestions, SuggestionRound, crop, parse_id, pool_ids, read_suggestions
from inqnet.modules.suggestive.scoring import score_pool
from inqnet.modules.suggestive.selection import bootstrap_sample, select_representative, top_uncertain
from inqnet.cli.config.safe_yaml import RecipeDataError, load_yaml

STATE, SUGGESTIONS, FCNS, SUMMARY = "state.json", "suggestions.json", "fcns.pt", "summary.json"
# Keys a resumed run may change: how long to go on, and how it shows progress.
RESUMABLE_CHANGES = ("annotate.rounds", "threads", "output_dir", "trainer.enable_progress_bar", "description")
Echo = Callable[[str], None]


@dataclass
class Pool:
    """The training images and every item (image or patch) suggestive annotation chooses among."""

    pairs: dict[str, Pair]
    ids: list[str]
    data_info: dict[str, Any]

    def image(self, item_id: str) -> np.ndarray:
        name, box = parse_id(item_id)
        return crop(self.pairs[name][0], box)

    def training_pairs(self, ids: list[str]) -> list[Pair]:
        return annotated_pairs(self.pairs, ids, "annotated set")


@dataclass
class AnnotateState:
    """What a resumed run needs: the annotated set after the rounds done, and their history."""

    initial: list[str]
    annotated: list[str]
    rounds_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def save(self, run_dir: Path) -> None:
        write_atomic(run_dir / STATE, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> AnnotateState:
        path = run_dir / STATE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(initial=list(data["initial"]), annotated=list(data["annotated"]),
                       rounds_done=int(data["rounds_done"]), history=list(data.get("history", [])))
        except FileNotFoundError:
            raise InqError(f"{run_dir}: not an `inq annotate` run folder (no {STATE}; nothing finished yet?)") from None
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InqError(f"{path}: unreadable annotate state ({err})") from None


@dataclass
class AnnotateResult:
    """What `inq annotate` reports at the end (and writes to summary.json)."""

    run_dir: str
    suggestions: str
    rounds_done: int
    pool: int
    initial: int
    annotated: int
    quantized_bits: int | None
    mean_uncertainty: float
    mean_distance: float
    wall_time_s: float
    rounds: list[dict[str, Any]]


def annotate_section(recipe: Recipe, source: str) -> AnnotateSection:
    """The recipe's `annotate` section (defaults if absent), after checking the recipe suits SA."""
    if recipe.data.name != "glas":
        raise InqError(f"{source}: data.name: inq annotate needs GlaS-format data (name: glas), "
                       f"got {recipe.data.name!r}")
    if recipe.model.name != "fcn":
        raise InqError(f"{source}: model.name: the suggestive FCNs must be model 'fcn', got {recipe.model.name!r}")
    if recipe.ensemble.members != 1:
        raise InqError(f"{source}: ensemble.members: inq annotate trains annotate.fcns suggestive FCNs itself; "
                       "ensembles are for network training (inq train)")
    if getattr(recipe.data, "suggestions", None) is not None or getattr(recipe.data, "subset", None) is not None:
        raise InqError(f"{source}: data.suggestions/data.subset: the pool is every training image; "
                       "set annotate.initial")
    section = recipe.annotate or AnnotateSection()
    if section.retrain == "finetune" and recipe.inq.enabled and recipe.inq.clock.step_mode:
        raise InqError(f"{source}: annotate.retrain: finetune runs INQ's stages again after finetune_epochs epochs, "
                       "so it needs stages counted in epochs (inq.epochs_per_stage, not inq.steps_per_stage)")
    return section


def load_pool(recipe: Recipe, section: AnnotateSection) -> Pool:
    """Reads every training image (writing the synthetic set first when the recipe asks for it)."""
    datamodule = build_datamodule(recipe)
    datamodule.prepare_data()
    if not scan_glas(recipe.data.root)["train"]:
        raise InqError(f"{recipe.data.root}: the pool is empty: no training images (train_N.bmp)")
    # the datamodule's own split: the images network training validates on (data.val_images, unless
    # data.val_on_test) are never suggested for annotation
    items = datamodule.select_items()["train"]
    pairs = load_train_pairs(items, recipe.data.max_image_pixels)
    return Pool(pairs=pairs, ids=pool_ids(image_sizes(pairs), section.unit, section.patch_size),
                data_info=dict(datamodule.data_info))


def initial_ids(section: AnnotateSection, pool: Pool, seed: int, source: str) -> list[str]:
    """The annotated set before round 1: the ids given, or `initial` items drawn at random."""
    where = f"{source}: annotate.initial"
    if isinstance(section.initial, list):
        known = set(pool.ids)
        for item in section.initial:
            if item not in known:
                example = pool.ids[0]
                raise InqError(f"{where}: {item!r} is not an item of the pool "
                               f"(unit {section.unit}; ids like {example})")
        chosen = list(dict.fromkeys(section.initial))
    else:
        if section.initial > len(pool.ids):
            raise InqError(f"{where}: {section.initial} is more than the pool's {len(pool.ids)} items")
        rng = np.random.default_rng([seed, 7])
        picks = set(rng.choice(len(pool.ids), size=section.initial, replace=False).tolist())
        chosen = [item for i, item in enumerate(pool.ids) if i in picks]
    left = len(pool.ids) - len(chosen)
    if left == 0:
        raise InqError(f"{where}: the unannotated pool is empty (all {len(pool.ids)} items are annotated initially)")
    if section.rounds * section.select > left:
        raise InqError(f"{source}: annotate.rounds: {section.rounds} rounds x {section.select} selected exceeds the "
                       f"{left} unannotated items of the pool")
    return chosen


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        return {k: v for key, value in data.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: data}


def check_resumable(recipe: Recipe, run_dir: Path) -> None:
    """InqError naming the first setting in which the recipe differs from the run's."""
    try:
        saved = _flat(load_yaml((run_dir / "resolved.yaml").read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, RecipeDataError, ValueError) as err:
        raise InqError(f"{run_dir}: cannot read its resolved.yaml ({err})") from None
    now = _flat(json.loads(json.dumps(recipe.resolved())))
    for key in sorted(set(saved) | set(now)):
        if key.startswith(RESUMABLE_CHANGES) or saved.get(key) == now.get(key):
            continue
        raise InqError(f"{run_dir}: cannot resume with a different {key} (run: {saved.get(key)!r}, now: "
                       f"{now.get(key)!r}); only annotate.rounds may change")


def _point_latest(run_dir: Path) -> None:
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        os.replace(tmp, link)
    except OSError:  # no symlinks here: the timestamped folder is still there
        tmp.unlink(missing_ok=True)


def _train_all(recipe: Recipe, section: AnnotateSection, pool: Pool, annotated: list[str], round_: int,
               previous: list[TrainedFCN] | None, echo: Echo) -> list[TrainedFCN]:
    fcns = []
    finetune = previous is not None and section.retrain == "finetune"
    for k in range(section.fcns):
        seed = fcn_seed(recipe.seed, round_, k)
        sample = bootstrap_sample(annotated, seed) if section.bootstrap else list(annotated)
        start = previous[k].float_state if finetune and previous is not None else None
        fcn = train_fcn(recipe, pool.data_info, pool.training_pairs(sample), seed, start=start)
        fcns.append(fcn)
        how = "fine-tuned" if finetune else "trained"
        echo(f"  FCN {k + 1}/{section.fcns} {how} for round {round_} on {len(set(sample))} distinct of "
             f"{len(sample)} items: loss {fcn.loss:.4f}, {fcn.seconds:.1f}s")
    return fcns


def _run_round(section: AnnotateSection, pool: Pool, state: AnnotateState, fcns: list[TrainedFCN], round_: int,
               device: str, run_dir: Path, suggestions: Suggestions) -> dict[str, Any]:
    started = time.perf_counter()
    annotated = set(state.annotated)
    unannotated = [item for item in pool.ids if item not in annotated]
    scores = score_pool([f.module for f in fcns], {i: pool.image(i) for i in unannotated}, section.inference_batch,
                        device)
    uncertainty = scores.uncertainties()
    candidates = top_uncertain(uncertainty, min(section.candidates, len(unannotated)))
    rows = {item: r for r, item in enumerate(scores.ids)}
    picked = select_representative(scores.descriptors, [rows[c] for c in candidates], section.select)
    selected = [scores.ids[r] for r in picked]
    np.savez(run_dir / f"descriptors_round{round_}.npz", ids=np.array(scores.ids), descriptors=scores.descriptors,
             uncertainty=scores.uncertainty)
    suggestions.rounds.append(SuggestionRound({c: uncertainty[c] for c in candidates}, selected))
    write_atomic(run_dir / SUGGESTIONS, json.dumps(suggestions.to_json(), indent=1) + "\n")
    return {"round": round_, "pool": len(unannotated), "mean_uncertainty": float(scores.uncertainty.mean()),
            "max_uncertainty": float(scores.uncertainty.max()), "mean_distance": float(scores.distance.mean()),
            "selected": selected, "fcn_loss": float(np.mean([f.loss for f in fcns])),
            "seconds": time.perf_counter() - started}


def _rounds(recipe: Recipe, section: AnnotateSection, pool: Pool, state: AnnotateState, suggestions: Suggestions,
            run_dir: Path, device: str, echo: Echo, after_round: Callable[[int], None] | None) -> None:
    """Rounds state.rounds_done + 1 .. section.rounds, saving the state after each."""
    fcns: list[TrainedFCN] | None = None
    for round_ in range(state.rounds_done + 1, section.rounds + 1):
        saved = run_dir / FCNS
        if fcns is None and saved.is_file():
            trained_for, loaded = load_fcns(saved, recipe, pool.data_info)
            if trained_for == round_:
                fcns = loaded
                echo(f"  loaded the {len(fcns)} FCNs trained for round {round_}")
            elif trained_for == round_ - 1:
                fcns = _train_all(recipe, section, pool, state.annotated, round_, loaded, echo)
                save_fcns(saved, round_, fcns)
        if fcns is None:
            fcns = _train_all(recipe, section, pool, state.annotated, round_, None, echo)
            save_fcns(saved, round_, fcns)
        record = _run_round(section, pool, state, fcns, round_, device, run_dir, suggestions)
        state.annotated += record["selected"]
        state.rounds_done = round_
        state.history.append(record)
        state.save(run_dir)
        echo(f"round {round_}/{section.rounds}: {record['pool']} unannotated, uncertainty mean "
             f"{record['mean_uncertainty']:.4f} max {record['max_uncertainty']:.4f}, FCN distance "
             f"{record['mean_distance']:.4f}; selected {', '.join(record['selected'])}; "
             f"{len(state.annotated)} annotated ({record['seconds']:.1f}s)")
        if after_round is not None:
            after_round(round_)
        if round_ < section.rounds:
            fcns = _train_all(recipe, section, pool, state.annotated, round_ + 1, fcns, echo)
            save_fcns(saved, round_ + 1, fcns)


def annotate(recipe: Recipe, recipe_name: str, source: str, resume: Path | None = None,
             echo: Echo = print, after_round: Callable[[int], None] | None = None) -> AnnotateResult:
    """Runs (or resumes) suggestive annotation; ``after_round(r)`` is called once round r is saved."""
    started = time.perf_counter()
    section = annotate_section(recipe, source)
    quiet_lightning_noise()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    pool = load_pool(recipe, section)
    if resume is not None:
        run_dir = resume
        if not run_dir.is_dir():
            raise InqError(f"{run_dir}: --resume: no such run folder")
        check_resumable(recipe, run_dir)
        state = AnnotateState.load(run_dir)
        suggestions = Suggestions(initial=list(state.initial), unit=section.unit)
        if (run_dir / SUGGESTIONS).is_file():  # a round written after the last state is redone
            suggestions.rounds = read_suggestions(run_dir / SUGGESTIONS).rounds[: state.rounds_done]
        left = len(pool.ids) - len(state.annotated)
        if (section.rounds - state.rounds_done) * section.select > left:
            raise InqError(f"{source}: annotate.rounds: {section.rounds - state.rounds_done} more rounds x "
                           f"{section.select} selected exceeds the {left} unannotated items of the pool")
        echo(f"resuming {run_dir} after round {state.rounds_done} of {section.rounds}")
    else:
        initial = initial_ids(section, pool, recipe.seed, source)
        run_dir = make_run_dir(recipe, recipe_name)
        save_resolved(recipe, run_dir / "resolved.yaml")
        _point_latest(run_dir)
        state = AnnotateState(initial=initial, annotated=list(initial))
        suggestions = Suggestions(initial=list(initial), unit=section.unit)
        state.save(run_dir)
    bits = recipe.inq.bits if recipe.inq.enabled else None
    kind = f"{bits}-bit INQ" if bits else "float"
    unit = "images" if section.unit == "image" else f"{section.patch_size}px patches"
    echo(f"suggestive annotation: pool of {len(pool.ids)} {unit}, {len(state.initial)} annotated initially, "
         f"{section.fcns} {kind} FCNs, rounds of {section.candidates} candidates -> {section.select} selected")
    device = "cuda" if torch.cuda.is_available() and recipe.trainer.accelerator in ("auto", "gpu", "cuda") else "cpu"
    try:
        _rounds(recipe, section, pool, state, suggestions, run_dir, device, echo, after_round)
    except KeyboardInterrupt:
        echo(f"interrupted after round {state.rounds_done} of {section.rounds}; continue with: "
             f"inq annotate {source} --resume {run_dir} (with the same overrides)")
        raise
    history = state.history
    result = AnnotateResult(
        run_dir=str(run_dir), suggestions=str(run_dir / SUGGESTIONS), rounds_done=state.rounds_done,
        pool=len(pool.ids), initial=len(state.initial), annotated=len(state.annotated), quantized_bits=bits,
        mean_uncertainty=float(np.mean([h["mean_uncertainty"] for h in history])) if history else float("nan"),
        mean_distance=float(np.mean([h["mean_distance"] for h in history])) if history else float("nan"),
        wall_time_s=time.perf_counter() - started, rounds=history)
    write_atomic(run_dir / SUMMARY, json.dumps(asdict(result), indent=1) + "\n")
    return result
