"""Pools of envs for stage 3's training and for evaluations: one env in this process, or one worker process per env.

With several envs each lives in its own process (its own MuJoCo model and EGL context), so physics and rendering of
all envs run in parallel while the main process updates the agent: `call_async` sends a command to some envs and
returns at once, `wait` collects the answers. With one env, the env lives in this process and `wait` runs the
command: exactly the single-env loop of VRL3.

gymnasium's vector envs do not fit here: the stage-3 loop needs VRL3's TimeStep (frame, sensor, goal counts), the
envs' reset RNG states for checkpoints, and episodes that start together (see Workspace._stage3_loop).
"""

import multiprocessing
import traceback
from typing import Any

import numpy as np

from vrl3.errors import UserError

ENV_START_TIMEOUT_S = 300  # a worker builds its env (imports, MuJoCo model, renderer) within this


def env_seeds(seed: int, num_envs: int) -> list[int]:
    """Env 0 gets the run's seed (one env = the single-env run); the others seeds derived from (seed, index)."""
    return [seed] + [int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) for index in range(1, num_envs)]


def checkpoint_rng_state(env) -> dict | None:
    """None for an env not reset yet: its RNG is unseeded, and its first reset after a resume must seed it with
    make_env's seed as in an uninterrupted run (stage-2 checkpoints are taken before any training reset)."""
    return env.rng_state() if env._seeded else None


def restore_rng_state(env, state: dict | None) -> None:
    if state is not None:
        env.set_rng_state(state)


COMMANDS = {"reset": lambda env: env.reset(), "step": lambda env, action: env.step(action),
            "rng_state": checkpoint_rng_state, "set_rng_state": restore_rng_state}


def _serve(connection, task: str, seed: int, env_kwargs: dict) -> None:
    """A worker: build the env, then run commands until `close` or until the main process is gone."""
    from vrl3.envs.make import make_env

    env = None
    try:
        env = make_env(task, seed=seed, **env_kwargs)
        connection.send(("ok", None))
        while True:
            command, args = connection.recv()
            if command == "close":
                break
            connection.send(("ok", COMMANDS[command](env, *args)))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass  # the main process ended or was interrupted: it reports what happened
    except BaseException as error:  # noqa: BLE001 - the main process raises it with the worker's traceback
        try:
            connection.send(("error", (isinstance(error, UserError), str(error), traceback.format_exc())))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if env is not None:
            env.close()


class EnvPool:
    """`len(seeds)` envs of one task, stepped together; env i is seeded with seeds[i]."""

    def __init__(self, task: str, seeds: list[int], env_kwargs: dict):
        """env_kwargs: make_env's keyword arguments, action_repeat among them."""
        self.task_name = task
        self.action_repeat = env_kwargs["action_repeat"]
        self.num_envs = len(seeds)
        self._pending: tuple[str, dict[int, tuple]] | None = None
        self._envs, self._workers, self._connections = [], [], []
        if self.num_envs == 1:
            from vrl3.envs.make import make_env

            self._envs = [make_env(task, seed=seeds[0], **env_kwargs)]
            return
        # spawn, not fork: a forked child would share this process's EGL/CUDA state
        context = multiprocessing.get_context("spawn")
        try:
            for seed in seeds:
                parent_end, child_end = context.Pipe()
                worker = context.Process(target=_serve, args=(child_end, task, seed, env_kwargs), daemon=True,
                                         name=f"vrl3-env-{len(self._workers)}")
                worker.start()
                child_end.close()
                self._workers.append(worker)
                self._connections.append(parent_end)
            for index in range(self.num_envs):
                self._receive(index, timeout=ENV_START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    def call_async(self, command: str, args_by_env: dict[int, tuple]) -> None:
        """Start `command` on the envs named by `args_by_env` (index -> arguments); `wait` returns the answers."""
        if self._pending is not None:
            raise RuntimeError("EnvPool.call_async called again before wait")
        if command not in COMMANDS:
            raise ValueError(f"unknown env command {command!r}")
        if self._connections:
            for index, args in args_by_env.items():
                try:
                    self._connections[index].send((command, args))
                except (BrokenPipeError, ConnectionResetError):
                    raise self._died(index) from None
        self._pending = (command, args_by_env)

    def wait(self) -> dict[int, Any]:
        command, args_by_env = self._pending
        self._pending = None
        if self._envs:
            return {index: COMMANDS[command](self._envs[index], *args) for index, args in args_by_env.items()}
        return {index: self._receive(index) for index in args_by_env}

    def call(self, command: str, args_by_env: dict[int, tuple] | None = None) -> dict[int, Any]:
        """Run `command` on the given envs (all envs without arguments when None) and return the answers."""
        self.call_async(command, {index: () for index in range(self.num_envs)} if args_by_env is None
                        else args_by_env)
        return self.wait()

    def rng_states(self) -> list[dict | None]:
        """Every env's reset RNG state for a checkpoint (None for an env not reset yet)."""
        states = self.call("rng_state")
        return [states[index] for index in range(self.num_envs)]

    def set_rng_states(self, states: list[dict | None]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"{len(states)} RNG states for {self.num_envs} envs")
        self.call("set_rng_state", {index: (state,) for index, state in enumerate(states)})

    def _receive(self, index: int, timeout: float | None = None) -> Any:
        connection = self._connections[index]
        try:
            if timeout is not None and not connection.poll(timeout):
                raise RuntimeError(f"env worker {index} did not start within {timeout} s")
            status, payload = connection.recv()
        except (EOFError, ConnectionResetError):
            raise self._died(index) from None
        if status == "error":
            is_user_error, message, worker_traceback = payload
            if is_user_error:
                raise UserError(message)
            raise RuntimeError(f"env worker {index} failed: {message}\n{worker_traceback}")
        return payload

    def _died(self, index: int) -> RuntimeError:
        self._workers[index].join(timeout=5)
        return RuntimeError(f"env worker {index} died (exit code {self._workers[index].exitcode}); the run resumes "
                            "from its last checkpoint when started again")

    def close(self) -> None:
        for env in self._envs:
            env.close()
        for connection in self._connections:
            try:
                connection.send(("close", ()))
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
        for connection in self._connections:
            connection.close()
        self._envs, self._workers, self._connections = [], [], []


class LazyEnvPool:
    """An EnvPool that starts its envs (or worker processes) on first use and can be closed and restarted; until it
    starts, the envs' reset RNG states are those a checkpoint restored (None: not reset yet)."""

    def __init__(self, task: str, seeds: list[int], env_kwargs: dict):
        self.task, self.seeds, self.env_kwargs = task, seeds, env_kwargs
        self.num_envs = len(seeds)
        self._pool: EnvPool | None = None
        self._rng_states: list[dict | None] = [None] * self.num_envs

    def get(self) -> EnvPool:
        if self._pool is None:
            pool = EnvPool(self.task, self.seeds, self.env_kwargs)
            try:
                pool.set_rng_states(self._rng_states)
            except BaseException:
                pool.close()
                raise
            self._pool = pool
        return self._pool

    def rng_states(self) -> list[dict | None]:
        return list(self._rng_states) if self._pool is None else self._pool.rng_states()

    def set_rng_states(self, states: list[dict | None]) -> None:
        if len(states) != self.num_envs:
            raise ValueError(f"{len(states)} RNG states for {self.num_envs} envs")
        self._rng_states = list(states)
        if self._pool is not None:
            self._pool.set_rng_states(states)

    def close(self) -> None:
        """Stop the envs; a later `get` restarts them where their reset RNGs were."""
        if self._pool is None:
            return
        try:
            self._rng_states = self.rng_states()
        except (RuntimeError, UserError, OSError):
            pass  # a dead worker: closing is part of reporting that, not a second failure
        finally:
            self._pool.close()
            self._pool = None
