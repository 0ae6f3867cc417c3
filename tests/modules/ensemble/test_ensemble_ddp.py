"""Ensembles on CPU ranks (gloo): members differ, replicas agree, several members per rank, resume."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).resolve().parent / "ensemble_script.py"


def run(out: Path, members: int, devices: int, max_epochs: int = 3, resume: Path | None = None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(SCRIPT), str(out), str(members), str(devices), str(max_epochs)]
    if resume is not None:
        args.append(str(resume))
    proc = subprocess.run(args, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt") for r in range(devices)]


def member_weights(state: dict, member: int) -> dict:
    prefix = f"members.{member}."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and "metrics" not in k}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_differ(a: dict, b: dict) -> None:
    weights = [k for k in a if k.endswith("weight") and a[k].dim() > 1]
    assert weights and all(not torch.equal(a[k], b[k]) for k in weights)


@pytest.mark.slow
def test_two_ranks_two_members_and_one_rank_agree(tmp_path: Path) -> None:
    r0, r1 = run(tmp_path / "w2k2", members=2, devices=2)
    assert_same(r0, r1)  # after the sync every rank holds every member
    assert_differ(member_weights(r0, 0), member_weights(r0, 1))
    (single,) = run(tmp_path / "w1k2", members=2, devices=1)
    # each member trains alone on its own rank with its own seed: the same as both on one rank
    for m in range(2):
        a, b = member_weights(r0, m), member_weights(single, m)
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)
    masks = [k for k in r0 if k.endswith("_inq_mask")]
    assert masks and all(bool(r0[k].all()) for k in masks)  # INQ ran per member to the end


@pytest.mark.slow
def test_two_ranks_one_member_is_plain_ddp(tmp_path: Path) -> None:
    r0, r1 = run(tmp_path / "w2k1", members=1, devices=2)
    assert_same({k: v for k, v in r0.items() if "running" not in k and "metrics" not in k},
                {k: v for k, v in r1.items() if "running" not in k and "metrics" not in k})


@pytest.mark.slow
def test_two_ranks_four_members(tmp_path: Path) -> None:
    r0, r1 = run(tmp_path / "w2k4", members=4, devices=2)
    assert_same(r0, r1)
    members = [member_weights(r0, m) for m in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert_differ(members[i], members[j])


@pytest.mark.slow
def test_interrupted_ensemble_resumes_to_the_same_end(tmp_path: Path) -> None:
    full, _ = run(tmp_path / "full", members=2, devices=2, max_epochs=3)
    resumed, _ = run(tmp_path / "resumed", members=2, devices=2, max_epochs=3,
                     resume=tmp_path / "full" / "epoch=1.ckpt")
    for m in range(2):
        a, b = member_weights(full, m), member_weights(resumed, m)
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)
