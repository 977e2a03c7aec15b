"""Demonstrations for VRL3: DAPG human demos, DAPG expert rollouts or Minari datasets, re-rendered to pixels.

Entry point: `vrl3 demos` (vrl3.demos.cli). Output format: vrl3.demos.store; details in docs/demos.md.
"""
