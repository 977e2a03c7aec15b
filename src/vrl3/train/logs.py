"""CSV logs with the official columns; resumable by truncating to the rows a checkpoint knew of."""

import csv
from pathlib import Path

from vrl3.paths import write_text_atomic

EVAL_COLUMNS = ["episode", "episode_length", "episode_reward", "frame", "step", "success_rate", "total_time",
                "variant"]  # variant: ours (which entry of the config's `variants` made the run)
TRAIN_COLUMNS = ["abs_pretanh", "actor_ent", "actor_logprob", "actor_loss", "actor_loss_bc", "batch_reward",
                 "buffer_size", "critic_loss", "critic_q1", "critic_q2", "critic_target_q", "episode",
                 "episode_length", "episode_reward", "fps", "frame", "max_abs_pretanh", "step", "total_time"]
STAGE2_EVAL_COLUMNS = ["update", "episode_reward", "episode_length", "success_rate", "critic_q1", "critic_loss",
                       "total_time"]
# ours (the official code logs no stage-2 updates): update metrics averaged over train_log_every_steps updates
STAGE2_TRAIN_COLUMNS = ["update", "abs_pretanh", "actor_ent", "actor_logprob", "actor_loss", "actor_loss_bc",
                        "batch_reward", "critic_loss", "critic_q1", "critic_q2", "critic_target_q", "max_abs_pretanh",
                        "total_time"]


class CsvLog:
    """Append-only CSV with a fixed header; `truncate(n)` drops rows written after a checkpoint."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = path
        self.columns = columns
        self.rows = 0
        if path.exists():
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
                self.rows = sum(1 for _ in f)
            if header:
                self.columns = header  # a log begun by an older version keeps its columns when resumed

    def truncate(self, rows: int) -> None:
        if not self.path.exists():
            self.rows = 0
            return
        with open(self.path, newline="") as f:
            lines = f.readlines()[: rows + 1]
        write_text_atomic(self.path, "".join(lines))
        self.rows = max(len(lines) - 1, 0)

    def write(self, row: dict) -> None:
        new = not self.path.exists() or self.rows == 0
        with open(self.path, "w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.rows += 1
