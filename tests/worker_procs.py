"""Run the real ``aioworker`` CLI (or any command) as a child process in tests.

Output goes to a file rather than a pipe, so a chatty worker can never block on a full pipe
while the test is busy signalling it. Each process runs in its own session: a signal reaches it
only when a test sends one with ``proc.send_signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ("ProcessSpawner", "WorkerSpawner")

ROOT = Path(__file__).resolve().parent.parent
_KILL_TIMEOUT_S = 10.0


class ProcessSpawner:
    """Start child processes, keep their output in files, and kill leftovers on :meth:`close`.

    :param directory: where the output files go.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._procs: list[subprocess.Popen[bytes]] = []
        self._outputs: dict[int, Path] = {}

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` from the repository root with stdout and stderr going to one file.

        :param argv: the command line.
        :param env: variables set on top of the current environment.
        :returns: the running process.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        # So import strings like "tests.apps.x:worker" resolve in the child.
        pythonpath = full_env.get("PYTHONPATH")
        full_env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{pythonpath}" if pythonpath else str(ROOT)
        if env is not None:
            full_env.update(env)
        out_path = self.directory / f"proc-{len(self._procs)}.log"
        with out_path.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        self._outputs[proc.pid] = out_path
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """Read everything the process has written so far (stdout and stderr interleaved).

        :param proc: a process started by this spawner.
        :returns: the output text.
        :raises KeyError: if the process was not started here.
        """
        return self._outputs[proc.pid].read_text(errors="replace")

    def wait_for_output(
        self, proc: subprocess.Popen[bytes], needle: str, *, timeout_s: float = 15.0
    ) -> str:
        """Block until ``needle`` appears in the process output.

        :param proc: a process started by this spawner.
        :param needle: text to look for.
        :param timeout_s: how long to wait.
        :returns: the output at the moment the text was found.
        :raises AssertionError: if the process exits or the time runs out first; the message
            carries the output.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.output(proc)
            if needle in text:
                return text
            self._check_waiting(proc, needle, text, deadline)
            time.sleep(0.05)

    async def wait_for_output_async(
        self, proc: subprocess.Popen[bytes], needle: str, *, timeout_s: float = 15.0
    ) -> str:
        """Like :meth:`wait_for_output`, but yields to the event loop while waiting."""
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.output(proc)
            if needle in text:
                return text
            self._check_waiting(proc, needle, text, deadline)
            await asyncio.sleep(0.05)

    @staticmethod
    def _check_waiting(
        proc: subprocess.Popen[bytes], needle: str, text: str, deadline: float
    ) -> None:
        code = proc.poll()
        if code is not None:
            # The file may have grown between the read and the exit.
            raise AssertionError(f"process exited with {code} before printing {needle!r}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {needle!r} in output:\n{text}")

    async def wait_exit(self, proc: subprocess.Popen[bytes], *, timeout_s: float = 30.0) -> int:
        """Wait for the process to exit without blocking the event loop.

        :param proc: a process started by this spawner.
        :param timeout_s: how long to wait.
        :returns: the exit status (negative signal number if killed by a signal).
        :raises AssertionError: if it is still running after ``timeout_s``; the message carries
            the output.
        """
        deadline = time.monotonic() + timeout_s
        while (code := proc.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"process {proc.pid} still running after {timeout_s}s:\n{self.output(proc)}"
                )
            await asyncio.sleep(0.05)
        return code

    def close(self) -> None:
        """Kill every process started here that still runs, by its PID, and reap it."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_KILL_TIMEOUT_S)
        self._procs.clear()


class WorkerSpawner(ProcessSpawner):
    """Runs ``python -m aioworker run <app> ...``; call it like a function."""

    def __call__(
        self, app: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a worker.

        :param app: the import string of the worker, e.g. ``"tests.apps.basic:worker"``.
        :param args: more CLI arguments.
        :param env: variables set on top of the current environment.
        :returns: the running process; read its output with :meth:`output`.
        """
        return self.spawn([sys.executable, "-m", "aioworker", "run", app, *args], env=env)
