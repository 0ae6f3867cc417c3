"""SLURM: the sbatch scripts `inq slurm` writes, and preemption/requeue inside the job."""
