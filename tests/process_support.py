"""Stopping a command's whole process group with a signal at a chosen moment, as a scheduler or a user would."""

import os
import signal
import subprocess
import time


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def signal_group_when(process: subprocess.Popen, ready, signal_number: int) -> str:
    """Send `signal_number` to the group of `process` (started with start_new_session=True) once `ready()` holds,
    wait until every process of the group is gone, and return what the process printed on its piped stream."""
    try:
        deadline = time.time() + 600
        while time.time() < deadline and process.poll() is None and not ready():
            time.sleep(0.1)
        if process.poll() is not None:
            printed = "".join(stream or "" for stream in process.communicate())
            raise AssertionError(f"the command ended before it could be stopped:\n{printed[-3000:]}")
        os.killpg(process.pid, signal_number)
        printed = "".join(stream or "" for stream in process.communicate(timeout=120))
        deadline = time.time() + 30
        while time.time() < deadline and group_alive(process.pid):
            time.sleep(0.2)
        assert not group_alive(process.pid), "a process of the stopped command is still running"
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    return printed
