"""`vrl3 train`: stage 2 (offline RL on demos) then stage 3 (online RL), resumable."""
