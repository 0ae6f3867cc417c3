"""`inq annotate` and NT on suggestions: bad input is one line, exit code 2, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.inq_cli.annotate.annotate_fixtures import nt_recipe, tiny_glas, tiny_recipe
from tests.inq_cli.clirunner import run_cli


@pytest.fixture(scope="module")
def glas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_glas(tmp_path_factory.mktemp("glas") / "glas")


def _one_line_error(proc, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """A subprocess result or a `call_main` result: exit 2 and one `error:` line naming the fragments."""
    code, out, err = (proc.returncode, proc.stdout, proc.stderr) if hasattr(proc, "returncode") else \
        (proc.code, proc.out, proc.err)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_fewer_candidates_than_selected(tmp_path: Path, glas: Path) -> None:
    """A real subprocess: the exit code and stderr as a shell sees them."""
    recipe = tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs")
    proc = run_cli("annotate", str(recipe), "annotate.candidates=2", "annotate.select=3")
    _one_line_error(proc, "annotate.select", "U=2")
    assert not (tmp_path / "runs").exists()


def test_empty_pool_no_training_images(tmp_path: Path, glas: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    root = tiny_glas(tmp_path / "glas")
    for path in root.glob("train_*"):
        path.unlink()
    proc = call_main("annotate", str(tiny_recipe(tmp_path / "r.yaml", root, tmp_path / "runs")))
    _one_line_error(proc, "pool is empty")
    assert not (tmp_path / "runs").exists()


def test_empty_pool_everything_annotated(tmp_path: Path, glas: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    recipe = tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs", unit="image",
                         initial=["train_1", "train_2", "train_3", "train_4"])
    _one_line_error(call_main("annotate", str(recipe)), "annotate.initial", "unannotated pool is empty")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override, fragments", [
    ("annotate.rounds=7", ("annotate.rounds", "exceeds the 13 unannotated")),
    ("annotate.initial=['train_9[0:32,0:32]']", ("annotate.initial", "not an item of the pool")),
    ("annotate.initial=[train_1]", ("annotate.initial", "'train_1' is not an item")),  # images, but unit is patch
    ("annotate.initial=40", ("annotate.initial", "more than the pool's 16 items")),
    ("ensemble.members=2", ("ensemble.members",)),
    ("data.subset=[train_1]", ("data.subset",)),
    ("annotate.retrain=finetune inq.steps_per_stage=2 inq.epochs_per_stage=null inq.float_epochs=0",
     ("annotate.retrain", "steps_per_stage")),
])
def test_bad_annotate_settings(tmp_path: Path, glas: Path, override: str, fragments: tuple[str, ...],
                              call_main) -> None:  # type: ignore[no-untyped-def]
    recipe = tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs")
    _one_line_error(call_main("annotate", str(recipe), *override.split()), *fragments)
    assert not (tmp_path / "runs").exists()


def test_resume_of_a_folder_that_is_no_run(tmp_path: Path, glas: Path,
                                           call_main) -> None:  # type: ignore[no-untyped-def]
    recipe = tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs")
    _one_line_error(call_main("annotate", str(recipe), "--resume", str(tmp_path / "nowhere")), "no such run folder")


def _suggestions(path: Path, selected: list[str], initial: list[str]) -> Path:
    path.write_text(json.dumps({"rounds": [{"candidates": {s: 0.1 for s in selected}, "selected": selected}],
                                "initial": initial}))
    return path


@pytest.mark.parametrize("selected, fragment", [
    (["train_2", "train_99"], "unknown id 'train_99'"),
    (["train_2[0:32,48:80]"], "outside the 64x64 image train_2"),
    (["not an id"], "not an item id"),
])
def test_nt_on_suggestions_naming_unknown_ids(tmp_path: Path, glas: Path, selected: list[str], fragment: str,
                                              call_main) -> None:  # type: ignore[no-untyped-def]
    suggestions = _suggestions(tmp_path / "suggestions.json", selected, ["train_1"])
    recipe = nt_recipe(tmp_path / "nt.yaml", glas, tmp_path / "runs", suggestions)
    _one_line_error(call_main("train", str(recipe)), str(suggestions), fragment)
    assert not (tmp_path / "runs").exists()


def test_nt_settings_errors(tmp_path: Path, glas: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    suggestions = _suggestions(tmp_path / "s.json", ["train_2"], [])
    recipe = nt_recipe(tmp_path / "nt.yaml", glas, tmp_path / "runs", suggestions)
    _one_line_error(call_main("train", str(recipe), "data.suggestion_rounds=3"), "fewer than the 3")
    _one_line_error(call_main("train", str(recipe), f"data.suggestions={tmp_path / 'missing.json'}"),
                    "no such suggestions file")
    _one_line_error(call_main("train", str(recipe), "data.initial_annotated=[]", "data.suggestion_rounds=1",
                            f"data.suggestions={_suggestions(tmp_path / 'e.json', [], [])}"), "names no annotated item")
    _one_line_error(call_main("validate", str(recipe), "data.subset=[train_1]"), "data.suggestions")
    assert not (tmp_path / "runs").exists()


def _damaged_fcns(kind: str, path: Path) -> None:
    import io

    import torch

    if kind == "garbage":
        path.write_bytes(b"\x80\x04not a checkpoint at all" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        buffer = io.BytesIO()
        torch.save({"round": 1, "fcns": [{"state": {"w": torch.zeros(64)}}]}, buffer)
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    elif kind == "wrong_layout":
        torch.save({"round": 1, "fcns": "nothing here"}, path)
    elif kind == "wrong_weights":
        torch.save({"round": 1, "fcns": [{"state": {"w": torch.zeros(3)}, "float": {}, "loss": 1.0,
                                          "seconds": 1.0}]}, path)
    else:  # a pickle that would build an object: weights_only refuses to run it
        torch.save({"round": 1, "fcns": [Path("/")]}, path)


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "wrong_layout", "wrong_weights", "object"])
def test_corrupt_fcns_file_is_one_line(tmp_path: Path, glas: Path, kind: str) -> None:
    from inqnet.cli.annotate.fcns import load_fcns
    from inqnet.cli.config.load import load_recipe
    from inqnet.cli.errors import InqError

    recipe = load_recipe(tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs"))
    path = tmp_path / "fcns.pt"
    _damaged_fcns(kind, path)
    with pytest.raises(InqError) as info:
        load_fcns(path, recipe, {"in_channels": 3, "val_splits": ["testA", "testB"], "test_splits": ["testA", "testB"]})
    text = str(info.value)
    assert text.startswith(f"{path}: cannot load the suggestive FCNs (") and "\n" not in text, text
    assert len(text) < 400 + len(str(path))


def test_resume_with_a_corrupt_fcns_file_exits_2(tmp_path: Path, glas: Path,
                                                 call_main) -> None:  # type: ignore[no-untyped-def]
    from inqnet.cli.annotate.rounds import FCNS, AnnotateState
    from inqnet.cli.config.load import load_recipe, save_resolved

    recipe_path = tiny_recipe(tmp_path / "r.yaml", glas, tmp_path / "runs")
    run_dir = tmp_path / "runs" / "r" / "20250101-000000"
    run_dir.mkdir(parents=True)
    save_resolved(load_recipe(recipe_path), run_dir / "resolved.yaml")
    AnnotateState(initial=["train_1[0:32,0:32]"], annotated=["train_1[0:32,0:32]"]).save(run_dir)
    _damaged_fcns("truncated", run_dir / FCNS)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    result = call_main("annotate", str(recipe_path), "--resume", str(run_dir))
    _one_line_error(result, str(run_dir / FCNS), "cannot load the suggestive FCNs")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # nothing rewritten


def test_pool_leaves_out_the_held_out_validation_images(tmp_path: Path) -> None:
    from inqnet.cli.annotate.rounds import load_pool
    from inqnet.cli.config.load import load_recipe
    from inqnet.cli.config.schema import AnnotateSection
    from inqnet.modules.datamodules.glas import hold_out, scan_glas

    root = tiny_glas(tmp_path / "glas", train=5)
    recipe = load_recipe(tiny_recipe(tmp_path / "r.yaml", root, tmp_path / "runs"),
                         ["data.val_on_test=false", "data.val_images=1", "data.split_seed=3"])
    pool = load_pool(recipe, recipe.annotate or AnnotateSection())
    _, (held,) = hold_out(scan_glas(root)["train"], 1, 3)
    assert sorted(pool.pairs) == sorted({f"train_{n}" for n in range(1, 6)} - {held.name})
    assert not any(item.startswith(f"{held.name}[") for item in pool.ids) and len(pool.ids) == 16
