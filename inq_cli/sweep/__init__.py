"""Sweeps: grids of overrides, W&B sweep files, and running a grid here (`inq sweep --local`)."""
