"""Sweeps that survive: what a run folder holds when a sweep is run again into it, and search pruning."""
