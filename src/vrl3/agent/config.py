"""Agent hyper-parameters with VRL3's key names and defaults (reference §7.1 "Agent")."""

from dataclasses import dataclass, fields

from vrl3.errors import UserError

PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass
class AgentConfig:
    critic_target_tau: float = 0.01
    update_every_steps: int = 2
    lr: float = 1e-4
    hidden_dim: int = 1024
    feature_dim: int = 50
    use_data_aug: bool = True
    encoder_lr_scale: float = 1.0  # the caller resolves `auto` with vrl3.tasks (relocate 0.01, else 1)
    stddev_clip: float = 0.3
    safe_q_target_factor: float = 0.5
    safe_q_threshold: float = 200.0
    pretanh_threshold: float = 5.0
    pretanh_penalty: float = 0.001
    stage2_update_encoder: bool = True
    cql_weight: float = 1.0
    cql_temp: float = 1.0
    cql_n_random: int = 10
    stage2_std: float = 0.1
    stage2_bc_weight: float = 0.0
    stage3_update_encoder: bool = True
    num_expl_steps: int = 0
    std0: float = 0.01
    std1: float = 0.01
    std_n_decay: int = 500000
    stage3_bc_lam0: float = 0.0
    stage3_bc_lam1: float = 0.95
    stage1_model_name: str = "resnet6_32channel"
    use_sensor: bool = True
    stage3_conservative: bool = False  # ablation "S3 Cons": keep the CQL term in stage 3
    precision: str = "fp32"  # fp32 | tf32 | bf16 (speed options; fp32 = PyTorch's defaults, as the paper)
    compile: bool = False  # speed only: nn.Module.compile of encoder, actor and critics (see VRL3Agent)

    def __post_init__(self):
        if isinstance(self.encoder_lr_scale, str):
            raise UserError(f"agent.encoder_lr_scale={self.encoder_lr_scale!r} must be a number here: "
                            f"resolve 'auto' with vrl3.tasks.get_task(name).encoder_lr_scale first")
        if self.cql_temp <= 0:
            raise UserError(f"agent.cql_temp={self.cql_temp} must be > 0")
        if self.precision not in PRECISIONS:
            raise UserError(f"agent.precision={self.precision!r} must be one of {', '.join(PRECISIONS)}")

    @classmethod
    def from_dict(cls, values: dict) -> "AgentConfig":
        """Build from a mapping (e.g. the `agent:` block of a run config); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown agent key(s) {', '.join(unknown)}: valid keys are {', '.join(sorted(known))}")
        return cls(**values)
