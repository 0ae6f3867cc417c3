"""`inq`: the command-line side of the INQ training system (recipes, runs, subcommands)."""
