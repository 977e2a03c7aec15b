"""Restricted unpickling of the DAPG files (untrusted input) and validation of the demo pickles.

Demo pickles may hold numpy arrays, dicts, lists, strings and numbers only. Policy pickles additionally need the
few torch/mjrl globals of an mjrl Gaussian MLP; mjrl classes become plain attribute holders, so no mjrl code is
needed and no code of the file's choosing runs.
"""

import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray

from vrl3.errors import UserError
from vrl3.tasks import AdroitTask

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

# Shapes of the state dict entries each task's set_env_state reads (qpos/qvel sizes: reference §4.4).
STATE_SHAPES = {
    "door": {"qpos": (30,), "qvel": (30,), "door_body_pos": (3,)},
    "hammer": {"qpos": (33,), "qvel": (33,), "board_pos": (3,)},
    "pen": {"qpos": (30,), "qvel": (30,), "desired_orien": (4,)},
    "relocate": {"qpos": (36,), "qvel": (36,), "obj_pos": (3,), "target_pos": (3,)},
}


class ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict[tuple[str, str], Any] = _NUMPY_GLOBALS

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None


class MjrlObject:
    """Stand-in for the mjrl and torch.nn classes of a policy pickle: keeps the pickled attributes, nothing else."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TorchFunctions:
    """Stand-in for torch._C._VariableFunctions: `getattr(it, name)` is all the pickles do with it."""

    def __init__(self):
        import torch
        self.tanh = torch.tanh


def _restricted_getattr(owner: Any, name: str) -> Any:
    if isinstance(owner, _TorchFunctions) and name == "tanh":
        return owner.tanh
    raise ForbiddenGlobal(f"getattr({type(owner).__name__}, {name!r})")


def _load_torch_bytes(data: bytes) -> Any:
    import torch
    return torch.load(io.BytesIO(data), weights_only=True)  # torch's own restricted unpickler


class _PolicyUnpickler(_RestrictedUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("mjrl.") or (module, name) in {("torch.nn.modules.linear", "Linear"),
                                                             ("torch.nn.modules.container", "ModuleList")}:
            return MjrlObject
        import torch._utils
        policy_globals = {
            ("torch.nn.backends.thnn", "_get_thnn_function_backend"): lambda: None,
            ("torch._C", "_VariableFunctions"): _TorchFunctions(),
            ("builtins", "getattr"): _restricted_getattr,
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): _load_torch_bytes,
        }
        if (module, name) in policy_globals:
            return policy_globals[(module, name)]
        return super().find_class(module, name)


def _unpickle(path: Path, unpickler: type[pickle.Unpickler], what: str, fix: str) -> Any:
    try:
        with open(path, "rb") as file:
            return unpickler(file).load()
    except ForbiddenGlobal as error:
        raise UserError(f"{path}: refused to unpickle global {error} (only {what} are allowed): not a hand_dapg "
                        f"file; {fix}") from None
    except Exception as error:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        raise UserError(f"{path}: cannot unpickle ({type(error).__name__}: {error}), the file is truncated or "
                        f"corrupt; {fix}") from None


def load_policy_pickle(path: Path) -> Any:
    """The unpickled mjrl policy object (attribute holders, torch tensors, numpy arrays)."""
    return _unpickle(path, _PolicyUnpickler, "the mjrl Gaussian MLP's torch/numpy globals",
                     "replace it with hand_dapg's policies file")


def _check_plain(value: Any, path: Path) -> None:
    """Only containers, strings, numbers and non-object numpy arrays (a numpy object array could hide anything)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, path)
            _check_plain(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, path)
    elif isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject:
            raise UserError(f"{path}: holds a numpy object array; a DAPG demo pickle holds numeric arrays only")
    elif not isinstance(value, (str, bytes, int, float, bool, type(None))):
        raise UserError(f"{path}: holds a {type(value).__name__}; a DAPG demo pickle holds arrays, dicts, lists "
                        f"and numbers only")


def _numeric_array(value: Any, what: str, path: Path, fix: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: {what} is not a numeric array; {fix}") from None
    if not np.all(np.isfinite(array)):
        raise UserError(f"{path}: {what} contains NaN or inf; {fix}")
    return array


def validate_demos(raw: Any, task: AdroitTask, path: Path, obs_dim: int | None = None) -> list[dict]:
    """Check the DAPG demo structure; returns [{actions (T, A), init_state_dict, observations (T, obs) or None}]."""
    fix = f"use hand_dapg's {task.name}-v0_demos.pickle (a list of dicts with actions, init_state_dict, observations)"
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{path}: expected a non-empty list of demo dicts, got {type(raw).__name__}; {fix}")
    _check_plain(raw, path)
    demos = []
    for index, demo in enumerate(raw):
        where = f"demo {index}"
        if not isinstance(demo, dict):
            raise UserError(f"{path}: {where} is a {type(demo).__name__}, not a dict; {fix}")
        for key in ("actions", "init_state_dict"):
            if key not in demo:
                raise UserError(f"{path}: {where} has no {key!r} (keys: {sorted(map(str, demo))}); {fix}")
        actions = _numeric_array(demo["actions"], f"{where} actions", path, fix)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != task.action_dim:
            raise UserError(f"{path}: {where} actions have shape {actions.shape}, expected (T, {task.action_dim}) "
                            f"for {task.name}: wrong task or file; {fix}")
        state = demo["init_state_dict"]
        if not isinstance(state, dict):
            raise UserError(f"{path}: {where} init_state_dict is a {type(state).__name__}, not a dict; {fix}")
        init_state = {}
        for key, shape in STATE_SHAPES[task.name].items():
            if key not in state:
                raise UserError(f"{path}: {where} init_state_dict lacks {key!r}: wrong task or file; {fix}")
            init_state[key] = _numeric_array(state[key], f"{where} init_state_dict[{key!r}]", path, fix).ravel()
            if init_state[key].shape != shape:
                raise UserError(f"{path}: {where} init_state_dict[{key!r}] has {init_state[key].size} entries, "
                                f"expected {shape[0]} for {task.name}; {fix}")
        observations = None
        if "observations" in demo:
            observations = _numeric_array(demo["observations"], f"{where} observations", path, fix)
            expected = (len(actions), obs_dim) if obs_dim is not None else (len(actions), observations.shape[-1])
            if observations.shape != expected:
                raise UserError(f"{path}: {where} observations have shape {observations.shape}, expected {expected} "
                                f"(one {task.name} state observation before each action); {fix}")
        demos.append({"actions": actions, "init_state_dict": init_state, "observations": observations})
    return demos


def load_demo_pickle(path: Path, task: AdroitTask, obs_dim: int | None = None) -> list[dict]:
    raw = _unpickle(path, _RestrictedUnpickler, "numpy arrays, dicts, lists and numbers",
                    f"use hand_dapg's demonstrations/{task.name}-v0_demos.pickle")
    return validate_demos(raw, task, path, obs_dim)
