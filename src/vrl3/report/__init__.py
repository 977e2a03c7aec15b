"""`vrl3 report`: aggregate eval.csv logs of many runs into the paper's figures and tables."""
