"""Experiment grids over variants × seeds × tasks, and the statistics of their results."""
