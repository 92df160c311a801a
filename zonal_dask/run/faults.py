"""What the command says when a computation stops before its output is written,
and how it says a warning.

The output is written only after the whole table is computed (atomically, see
``output.write_table``), so a run that stops during the computation leaves the
previous output (or none) untouched; these messages say so, and how many chunks
a checkpoint kept. Warnings are one line of words, without the file and source
line Python shows (``show_warning``), in the command and in the workers of the
LocalCluster it starts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ComputeError, ZonalError

_FAILURES: tuple[type[BaseException], ...] = (OSError, TimeoutError, CancelledError)


def show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` of the command: ``zonal-dask: warning: ...``."""
    text = " ".join(str(message).split()) or category.__name__
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""  # over a progress bar
    print(f"{clear}zonal-dask: warning: {text}", file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during the computation, with what was left behind."""


@contextmanager
def failures_reported(output: Path, checkpoint: str | None = None) -> Iterator[None]:
    """Turn an interrupted or failed computation into one line saying what is left.

    ``KeyboardInterrupt`` becomes ``Interrupted``; a lost scheduler, a
    worker that keeps dying or a timeout becomes ``ComputeError``.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {_left(output, checkpoint)}") from None
    except ZonalError:
        raise
    except _FAILURES + _distributed_errors() as err:
        message = str(err).splitlines()[0] if str(err) else ""
        raise ComputeError(
            f"computation failed ({type(err).__name__}"
            f"{': ' + message if message else ''}); {_left(output, checkpoint)}"
        ) from err


def _left(output: Path, checkpoint: str | None) -> str:
    from .checkpoint import MANIFEST  # numpy and xarray: not for --help

    text = f"no output written ({output} untouched)"
    if checkpoint:
        directory = Path(checkpoint)
        if (directory / MANIFEST).exists():
            saved = len(list(directory.glob("chunk-*.npz")))
            text += f"; {saved} chunks saved in {checkpoint}, rerun to resume"
    return text


def _distributed_errors() -> tuple[type[BaseException], ...]:
    if "distributed" not in sys.modules:
        return ()
    from distributed import KilledWorker

    return (KilledWorker,)
