"""The `inq` command line: subcommands, recipes (config), runs, SLURM, sweeps, reports, annotate."""
