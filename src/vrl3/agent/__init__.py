"""The VRL3 agent: ResNet84 encoder, actor, twin critic, and the stage-2/3 update."""

from vrl3.agent.agent import METRIC_NAMES, VRL3Agent, metrics_to_floats
from vrl3.agent.config import AgentConfig
from vrl3.agent.encoder import (RESNET84_NAMES, RLEncoder, ResNet84, expand_stem_channels, load_stage1_checkpoint,
                                make_resnet84)

__all__ = ["AgentConfig", "METRIC_NAMES", "RESNET84_NAMES", "RLEncoder", "ResNet84", "VRL3Agent",
           "expand_stem_channels", "load_stage1_checkpoint", "make_resnet84", "metrics_to_floats"]
