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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ComputeError, ZonalError
from ..io.location import locate

_FAILURES: tuple[type[BaseException], ...] = (OSError, TimeoutError, CancelledError)


def show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` of the command: ``zonal-dask: warning: ...``."""
    text = " ".join(str(message).split()) or category.__name__
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""  # over a progress bar
    print(f"{clear}zonal-dask: warning: {text}", file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during the computation; its text says what was left behind."""


@dataclass
class Stage:
    """What the command is doing (None: it has written everything), the
    output it writes, and what it has published so far, for the one line
    Ctrl-C prints (``interrupted``)."""

    doing: str | None = "starting"
    output: Path | None = None
    published: list[str | Path] = field(default_factory=list)

    def interrupted(self, err: KeyboardInterrupt) -> str:
        """The line saying what Ctrl-C interrupted and what is left; a run
        stopped before its end removes what it had published, so that its
        outputs are all there or none is."""
        if self.doing is None:
            return f"interrupted after {self.output} was written (it is complete)"
        removed = []
        for where in map(locate, self.published):  # a local path or a URL
            if where.fs.exists(where.fs_path):
                where.fs.rm(where.fs_path, recursive=True)
            removed.append(where.url)
        if removed:
            left = f"no output written (this run's {', '.join(removed)} removed)"
        elif isinstance(err, Interrupted):
            left = str(err)
        elif self.output is not None:
            left = _left(self.output, None)
        else:
            left = "no output written"
        return f"interrupted while {self.doing}; {left}"


@contextmanager
def failures_reported(
    output: Path | str, checkpoint: str | None = None
) -> Iterator[None]:
    """Turn an interrupted or failed computation into one line saying what is left.

    ``KeyboardInterrupt`` becomes ``Interrupted``; a lost scheduler, a
    worker that keeps dying or a timeout becomes ``ComputeError``.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(_left(output, checkpoint)) from None
    except ZonalError:
        raise
    except _FAILURES + _distributed_errors() as err:
        message = str(err).splitlines()[0] if str(err) else ""
        raise ComputeError(
            f"computation failed ({type(err).__name__}"
            f"{': ' + message if message else ''}); {_left(output, checkpoint)}"
        ) from err


def _left(output: Path | str, checkpoint: str | None) -> str:
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
