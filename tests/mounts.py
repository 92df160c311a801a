"""Directories that refuse writes, or fill up, for the output tests.

As root, a small tmpfs is mounted over the directory (read-only, or a few
kilobytes); otherwise the directory's permissions are dropped, which root
ignores, so without mount rights as root the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(directory: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        timeout=10,
    )
    return run.returncode == 0


@contextmanager
def _mounted(directory: Path, options: str) -> Iterator[None]:
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], capture_output=True, timeout=10)


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` made unwritable for the duration of the block."""
    if _mount(directory, "ro,size=16k"):
        with _mounted(directory, "ro"):
            yield directory
        return
    if os.geteuid() == 0:
        pytest.skip("no mount rights: root ignores directory permissions")
    directory.chmod(0o500)
    try:
        yield directory
    finally:
        directory.chmod(0o700)


@contextmanager
def tiny_filesystem(directory: Path, size: str = "8k") -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``directory`` (root only)."""
    if not _mount(directory, f"size={size}"):
        pytest.skip("mounting a tmpfs needs root and mount rights")
    with _mounted(directory, ""):
        yield directory
