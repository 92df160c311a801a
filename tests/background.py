"""Long processes a test only waits for, started once the tests are collected.

``conftest.py`` calls each test module's ``start_in_background(items)`` with its
selected tests when collection ends; the module starts a ``Background`` for
them. It runs at a lower priority on the core the serial suite leaves idle;
the test waits for it then checks what it did, as it would have run it itself.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
from collections.abc import Sequence


class Background:
    """One process, started once, its output kept in temporary files."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.stdout = tempfile.TemporaryFile(mode="w+")
        self.stderr = tempfile.TemporaryFile(mode="w+")

    def start(self, command: Sequence[str], **options) -> None:
        if self.process is not None:
            return
        self.process = subprocess.Popen(
            command,
            stdout=self.stdout,
            stderr=self.stderr,
            text=True,
            preexec_fn=lambda: os.nice(5),
            **options,
        )
        atexit.register(self.stop)

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """The exit code, stdout and stderr of the process."""
        assert self.process is not None, "never started"
        code = self.process.wait(timeout)
        self.stdout.seek(0)
        self.stderr.seek(0)
        return code, self.stdout.read(), self.stderr.read()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def selected(items, name: str) -> bool:
    """Whether the test ``name`` (any of its parameters) is among ``items``."""
    return any(getattr(item, "originalname", item.name) == name for item in items)
