"""The `agent.precision` speed options: fp32 (PyTorch's defaults), tf32 (TF32 CUDA matmuls), bf16 (autocast)."""

import contextlib

import torch


def apply_process_flags(precision: str) -> None:
    """Process-wide switches of a precision: tf32 allows TF32 for CUDA matmuls (every CUDA matmul of the process,
    not only one agent's; no effect on CPU). fp32 and bf16 change nothing, so fp32 keeps PyTorch's defaults.
    """
    if precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context for network forward passes: bfloat16 autocast for bf16, else nothing.

    The autocast weight cache is off, as CUDA graph capture requires (a cached bf16 copy could outlive the weights
    it was cast from): every forward pass casts the current fp32 weights.
    """
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
