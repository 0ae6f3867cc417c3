"""One SLURM job identity (`inqnet.cli.slurm.requeue.slurm_job`) behind its three uses: the run
folder's name, the id `scontrol requeue` takes, and the job names `inq slurm` refuses."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from inqnet.cli.errors import InqError
from inqnet.cli.run.folder import RUN_NAME_ENV, run_name
from inqnet.cli.slurm import requeue
from inqnet.cli.slurm.requeue import (INTERACTIVE_JOB_NAMES, SlurmRequeue, requeue_callbacks, requeue_resume_point,
                                      slurm_job)
from inqnet.cli.slurm.sbatch import SbatchSpec, check_spec, job_name_for

PLAIN = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_JOB_NAME": "inq-x"}
# (environment, run folder name or None for a timestamped one, `scontrol requeue` id or None)
CASES = {
    "plain job": (PLAIN, "slurm-4242", "4242"),
    # an array task has its own SLURM_JOB_ID (4243), but Lightning and scontrol name it <array job>_<task>
    "array job": ({**PLAIN, "SLURM_JOB_ID": "4243", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "3"},
                  "slurm-40_3", "40_3"),
    "interactive allocation": ({**PLAIN, "SLURM_JOB_NAME": "bash"}, None, None),
    "interactive job name": ({**PLAIN, "SLURM_JOB_NAME": "interactive"}, None, None),
    "allocation without tasks": ({"SLURM_JOB_ID": "1", "SLURM_JOB_NAME": "inq-x"}, None, None),
    "no SLURM": ({}, None, None),
}


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch):
    """Sets exactly the given SLURM variables (and no other cluster's run name) in os.environ."""
    def apply(env: dict[str, str]) -> None:
        for var in [v for v in os.environ if v.startswith("SLURM_")] + [RUN_NAME_ENV, "TORCHELASTIC_RUN_ID"]:
            monkeypatch.delenv(var, raising=False)
        for var, value in env.items():
            monkeypatch.setenv(var, value)
    return apply


@pytest.mark.parametrize("case", CASES)
def test_the_rule(case: str) -> None:
    env, folder, requeue_id = CASES[case]
    job = slurm_job(env)
    if job is None:
        assert folder is None and requeue_id is None
    else:
        assert (job.run_name, job.requeue_id) == (folder, requeue_id)


@pytest.mark.parametrize("case", CASES)
def test_run_folder_requeue_and_resume_agree(case: str, job_env, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    env, folder, requeue_id = CASES[case]
    job_env(env)
    name = run_name()
    if folder is None:
        assert name[0].isdigit(), name  # a timestamp: an ordinary run, not a job's shared folder
    else:
        assert name == folder
    # the requeue support is on exactly in a SLURM job, and a requeued job resumes only there
    (tmp_path / "last.ckpt").write_bytes(b"x")
    assert bool(requeue_callbacks(tmp_path)) is (folder is not None)
    point = requeue_resume_point(tmp_path, lambda path: path.read_bytes())  # `check` sees the file and is kept
    assert point == ((tmp_path / "last.ckpt", b"x") if folder else None)
    calls: list[list[str]] = []
    monkeypatch.setattr(requeue.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    SlurmRequeue(tmp_path)._requeue()
    assert calls == ([["scontrol", "requeue", requeue_id]] if requeue_id else [])


@pytest.mark.parametrize("name", [*INTERACTIVE_JOB_NAMES, "inq-x", job_name_for("recipes/bash.yaml")])
def test_sbatch_refuses_exactly_the_names_that_are_no_job(name: str) -> None:
    spec = SbatchSpec(recipe="r.yaml", nodes=1, gpus_per_node=1, job_name=name)
    is_job = slurm_job({**PLAIN, "SLURM_JOB_NAME": name}) is not None
    if is_job:
        check_spec(spec)
    else:
        with pytest.raises(InqError, match=f"--job-name {name}"):
            check_spec(spec)
    assert slurm_job({**PLAIN, "SLURM_JOB_NAME": job_name_for(f"{name}.yaml")}) is not None  # the default name
