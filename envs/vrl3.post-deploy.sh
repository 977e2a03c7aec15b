#!/usr/bin/env bash
# Snakemake runs this once inside the freshly created conda env, from its working directory (the checkout):
# install vrl3 itself, editable, without touching the pinned dependencies of vrl3.yaml.
set -euo pipefail
python -m pip install --no-deps -e .
