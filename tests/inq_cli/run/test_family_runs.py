"""Each family trains a few steps on tiny data through `inq train` with INQ, ends fully quantized,
and `inq verify` passes on what it wrote; bad datasets stop a run with one line and exit code 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inqnet.modules.datamodules.synth_glas import write_synthetic_glas
from inqnet.modules.datamodules.synth_timit import write_synthetic_timit
from tests.modules.datamodules.test_imagenet_data import make_tree

pytestmark = pytest.mark.slow
QUIET = ["trainer.enable_progress_bar=False", "threads=1"]
STAGES = ["inq.float_epochs=1", "inq.epochs_per_stage=1"]


def train(call_main, *args: str) -> Path:  # type: ignore[no-untyped-def]
    result = call_main("train", *args, *QUIET)
    assert result.code == 0, result.err[-3000:]
    out = Path(next(a.split("=", 1)[1] for a in args if a.startswith("output_dir=")))
    recipe = Path(args[0]).stem
    (run_dir,) = (out / recipe).iterdir()
    return run_dir


def check_quantized_and_verified(call_main, run_dir: Path, bits: int) -> dict:  # type: ignore[no-untyped-def]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["inq"]["bits"] == [bits]
    assert summary["inq"]["quantized_fraction"] == 1.0
    result = call_main("verify", str(run_dir / "last.ckpt"))
    assert result.code == 0, result.out + result.err
    assert "FAIL" not in result.out
    state = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    masks = [k for k in state if k.endswith("_inq_mask")]
    assert masks and all(bool(state[k].all()) for k in masks)
    return summary


def test_fcn_on_synthetic_glas(call_main, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_dir = train(call_main, "recipes/fcn_quickstart.yaml", f"output_dir={tmp_path / 'runs'}",
                    f"data.root={tmp_path / 'glas'}", "model.width=4", "data.patch_size=32",
                    "data.patches_per_image=1", "inq.bits=4", *STAGES)
    assert (tmp_path / "glas" / "Grade.csv").is_file()  # generated on first use
    summary = check_quantized_and_verified(call_main, run_dir, 4)
    for key in ("test/f1", "test/object_dice", "test/object_hausdorff", "test/f1_dice", "test/testA/f1",
                "test/testB/object_dice"):
        assert key in summary["final_metrics"]
    state = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert "net.ups.3.weight_inq_mask" in state  # the transposed convs of the decoder are quantized too


def test_deepspeech_on_synthetic_timit(call_main, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = write_synthetic_timit(tmp_path / "timit", train_speakers=2, dev_speakers=1, test_speakers=1,
                                 utterances_per_speaker=2)
    run_dir = train(call_main, "recipes/deepspeech_quickstart.yaml", f"output_dir={tmp_path / 'runs'}",
                    f"data.root={root}", "model.hidden=16", "model.small=false", "model.decoder=beam",
                    "model.beam_width=2", *STAGES)
    summary = check_quantized_and_verified(call_main, run_dir, 5)
    assert 0.0 <= summary["final_metrics"]["test/per"] and "val/per" in summary["final_metrics"]
    state = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0_reverse", "fc2.weight", "out.weight"):
        assert f"net.{name}_inq_mask" in state


def test_deepspeech_ensemble_scores_the_mean_posteriors(call_main, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = write_synthetic_timit(tmp_path / "timit", train_speakers=2, dev_speakers=1, test_speakers=1,
                                 utterances_per_speaker=2)
    run_dir = train(call_main, "recipes/deepspeech_quickstart.yaml", f"output_dir={tmp_path / 'runs'}",
                    f"data.root={root}", "model.hidden=16", "ensemble.members=2", *STAGES)
    summary = check_quantized_and_verified(call_main, run_dir, 5)
    for key in ("test/per", "test/member0/per", "test/member1/per", "val/per"):
        assert 0.0 <= summary["final_metrics"][key]
    state = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert "members.1.net.rnn.weight_ih_l0_inq_mask" in state


def test_small_vgg_from_a_float_run_on_imagefolder(call_main, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_tree(tmp_path / "imagenet", per_class=2)
    data = [f"data.root={root}", "data.input_size=32", "data.num_workers=0", "data.batch_size=3"]
    float_dir = train(call_main, "recipes/vgg_small5_float.yaml", f"output_dir={tmp_path / 'float'}", *data,
                      "model.width=0.0625", "trainer.max_epochs=1", "scheduler.t_max=1")
    run_dir = train(call_main, "recipes/vgg_small5_8bit.yaml", f"output_dir={tmp_path / 'inq'}", *data,
                    "model.width=0.0625", f"model.init_from={float_dir / 'last.ckpt'}", "inq.epochs_per_stage=1",
                    "inq.max_value=null")  # n1 from the weights' own maximum, not the paper's 4.0
    summary = check_quantized_and_verified(call_main, run_dir, 8)
    assert "test/top1_error" in summary["final_metrics"]  # (top-5 needs at least 5 classes)
    start = torch.load(float_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    end = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    # the INQ run started from the float weights: n1 comes from their magnitude
    n1 = int(end["net.features.0.weight_inq_n1"])
    assert n1 == int(torch.floor(torch.log2(start["net.features.0.weight"].abs().max() * 4 / 3)))


@pytest.mark.parametrize("case", ["truncated_bmp", "broken_sphere", "bad_phn", "missing_root", "empty_split",
                                  "missing_init_from"])
def test_bad_datasets_stop_with_one_line(call_main, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    out = f"output_dir={tmp_path / 'runs'}"
    if case in ("truncated_bmp", "empty_split"):
        root = write_synthetic_glas(tmp_path / "glas", train=2, test_a=1, test_b=1, size=32)
        if case == "truncated_bmp":
            victim = root / "train_2.bmp"
            victim.write_bytes(victim.read_bytes()[:200])
            expect = f"{victim}: truncated or corrupt image"
        else:
            for p in root.glob("testA_*"):
                p.unlink()
            expect = f"{root}: empty testA split"
        args = ["recipes/fcn_quickstart.yaml", f"data.root={root}", "data.synthesize=false", "data.val_images=1"]
    elif case == "missing_init_from":
        root = write_synthetic_glas(tmp_path / "glas", train=2, test_a=1, test_b=1, size=32)
        args = ["recipes/fcn_quickstart.yaml", f"data.root={root}", f"model.init_from={tmp_path / 'float.ckpt'}",
                "data.val_images=1"]
        expect = f"{tmp_path / 'float.ckpt'}: init_from checkpoint does not exist"
    elif case == "missing_root":
        root = tmp_path / "nowhere"
        args = ["recipes/deepspeech_quickstart.yaml", f"data.root={root}", "data.synthesize=false"]
        expect = f"{root}: TIMIT root does not exist"
    else:
        root = write_synthetic_timit(tmp_path / "timit", train_speakers=1, dev_speakers=1, test_speakers=1,
                                     utterances_per_speaker=1)
        victim = next(root.glob("TEST/DR*/*/SI*.WAV")) if case == "broken_sphere" else next(root.glob("TRAIN/DR*/*/S*[!1-2].PHN"))
        if case == "broken_sphere":
            victim.write_bytes(victim.read_bytes().replace(b"sample_rate -i 16000", b"sample_rate -x 16000"))
            expect = f"{victim}: SPHERE header lacks sample_rate (a 'sample_rate -i N' line)"
        else:
            victim.write_text(victim.read_text().replace(" h#", " hh#", 1))
            expect = f"{victim}: line 1: unknown phone 'hh#'"
        args = ["recipes/deepspeech_quickstart.yaml", f"data.root={root}", "model.hidden=8", *STAGES]
    result = call_main("train", *args, out, *QUIET)
    assert result.code == 2, result.err[-2000:]
    lines = result.err.strip().splitlines()
    assert lines == [f"error: {expect}"] or (len(lines) == 1 and lines[0].startswith(f"error: {expect}")), lines
    assert "Traceback" not in result.err
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.rglob("*.*")), "a refused run left files behind"


@pytest.mark.parametrize("recipe", ["fcn_quickstart", "deepspeech_quickstart"])
def test_ensembles_of_two(call_main, tmp_path: Path, recipe: str) -> None:  # type: ignore[no-untyped-def]
    if recipe == "fcn_quickstart":
        root = write_synthetic_glas(tmp_path / "data", train=2, test_a=1, test_b=1, size=32)
        extra = ["model.width=4", "data.patch_size=32", "data.patches_per_image=1", "data.val_images=1"]
        metric = "f1_dice"
    else:
        root = write_synthetic_timit(tmp_path / "data", train_speakers=2, dev_speakers=1, test_speakers=1,
                                     utterances_per_speaker=1)
        extra = ["model.hidden=8"]
        metric = "per"
    run_dir = train(call_main, f"recipes/{recipe}.yaml", f"output_dir={tmp_path / 'runs'}", f"data.root={root}",
                    "ensemble.members=2", *extra, *STAGES)
    summary = check_quantized_and_verified(call_main, run_dir, 5)
    final = summary["final_metrics"]
    assert {f"test/{metric}", f"test/member0/{metric}", f"test/member1/{metric}"} <= set(final)
