"""Hyperparameter sweeps of any experiment on Ray Tune (`python -m jobs.sweep sweep=<name> experiment=<name>`)."""
