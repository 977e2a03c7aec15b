"""The workflow's view of a config: which runs exist, where each step writes, what each stage depends on.

Snakemake (Snakefile, workflow/rules/) and DVC (dvc.yaml, written by `vrl3 dvc-config`) both plan from here, so
the two list the same runs, paths and per-stage parameters.
"""
