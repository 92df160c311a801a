"""Rasters on object storage and HTTP: GDAL's settings from the usual variables.

GDAL reads ``s3://`` and ``/vsis3/`` paths with the credentials of the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` or ``~/.aws``) and ``https://`` or
``/vsicurl/`` URLs as they are. A non-AWS endpoint (MinIO, Ceph, a local test
server) it takes only from its own variables, ``AWS_S3_ENDPOINT`` (host and
port), ``AWS_HTTPS`` and ``AWS_VIRTUAL_HOSTING``, while boto3, the AWS CLI and
most tools read ``AWS_ENDPOINT_URL``. :func:`configure_gdal` derives GDAL's
variables from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` when GDAL's own
are not set. A run gives them to GDAL for its duration, in the threads that
plan and compute it (``run/process_state.py``), and to the workers of any
cluster (``run/workers.py``); importing zonal_dask changes no variable. A lazy
result computed later, outside a run, needs GDAL's variables set (or
``configure_gdal()`` called) in the process that reads.

Any other GDAL or AWS setting a run needs (``AWS_REGION``,
``GDAL_HTTP_MAX_RETRY``, ``AWS_NO_SIGN_REQUEST``...) is given as
``gdal_options=`` (``--gdal-option KEY=VALUE``), checked here
(:func:`check_gdal_options`), and reaches the client and every worker for the
run only. Credentials never travel in the task graph: each worker reads them
from its own environment, unless they are given as options, which travel to
the workers with the run's settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import OptionError

__all__ = ["check_gdal_options", "configure_gdal", "dask_setup", "gdal_options"]

# a GDAL configuration option's name, as GDAL and the AWS tools spell them
_OPTION = re.compile(r"[A-Z][A-Z0-9_]*")
# the block cache is the process's, not a run's (run/process_state.py bounds it)
NOT_OPTIONS = {
    "GDAL_CACHEMAX": "GDAL's block cache is the whole process's, not a run's: "
    "set GDAL_CACHEMAX in the environment of the client and the workers",
}
OPTION_FORM = "KEY=VALUE, KEY a GDAL or AWS option in capitals (GDAL_HTTP_MAX_RETRY=3)"


def check_gdal_options(given: Any) -> tuple[tuple[str, str], ...] | None:
    """The GDAL and AWS options of a run, checked, as ``(KEY, value)`` pairs.

    ``given`` is a mapping (``{"AWS_REGION": "eu-west-1"}``), or a sequence
    of ``"KEY=VALUE"`` texts (the command line's ``--gdal-option``) or of
    pairs; values are texts, numbers or booleans (``YES``/``NO``).

    Raises
    ------
    OptionError
        In one line naming the option at fault.

    Examples
    --------
    >>> check_gdal_options(["GDAL_HTTP_MAX_RETRY=3", ("AWS_NO_SIGN_REQUEST", True)])
    (('GDAL_HTTP_MAX_RETRY', '3'), ('AWS_NO_SIGN_REQUEST', 'YES'))
    """
    if given is None:
        return None
    if isinstance(given, Mapping):
        items = list(given.items())
    elif isinstance(given, (str, bytes)) or not hasattr(given, "__iter__"):
        raise OptionError(
            f"gdal_options must be a mapping of GDAL or AWS options "
            f"({{'AWS_REGION': 'eu-west-1'}}), not {given!r}"
        )
    else:
        items = [_pair(item) for item in given]
    options: dict[str, str] = {}
    for key, value in items:
        text = f"{key}={value}" if isinstance(key, str) else repr(key)
        if not isinstance(key, str) or not _OPTION.fullmatch(key):
            raise OptionError(f"gdal_options: {text!r} is not {OPTION_FORM}")
        if key in NOT_OPTIONS:
            raise OptionError(f"gdal_options: {key}: {NOT_OPTIONS[key]}")
        if isinstance(value, bool):
            value = "YES" if value else "NO"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str) or any(c in value for c in "\n\r\0"):
            raise OptionError(
                f"gdal_options: {key}={value!r}: the value must be one line of "
                f"text, a number or a boolean"
            )
        options[key] = value
    return tuple(options.items()) or None


def _pair(item: Any) -> tuple[Any, Any]:
    if isinstance(item, str):
        key, equals, value = item.partition("=")
        if not equals:
            raise OptionError(f"gdal_options: {item!r} is not {OPTION_FORM}")
        return key.strip(), value
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    raise OptionError(f"gdal_options: {item!r} is not {OPTION_FORM}")


def gdal_options(environ: Mapping[str, str]) -> dict[str, str]:
    """GDAL's endpoint variables implied by ``AWS_ENDPOINT_URL[_S3]``.

    Returns only the variables that ``environ`` does not already set, and
    nothing when it sets ``AWS_S3_ENDPOINT`` itself or no endpoint URL.

    Examples
    --------
    >>> gdal_options({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    {'AWS_S3_ENDPOINT': '127.0.0.1:9000', 'AWS_VIRTUAL_HOSTING': 'FALSE', \
'AWS_HTTPS': 'NO'}
    """
    url = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if not url or environ.get("AWS_S3_ENDPOINT"):
        return {}
    parts = urlsplit(url if "://" in url else f"https://{url}")
    options = {
        "AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/"),
        # custom endpoints (MinIO, Ceph, moto) expect path-style requests
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    if parts.scheme == "http":
        options["AWS_HTTPS"] = "NO"
    return {k: v for k, v in options.items() if k not in environ}


def configure_gdal(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set GDAL's endpoint variables in ``environ`` (``os.environ``); return them."""
    environ = os.environ if environ is None else environ
    options = gdal_options(environ)
    environ.update(options)
    return options


def dask_setup(worker: Any) -> None:
    """Hook for ``dask worker --preload zonal_dask.io.remote``: runs do not
    need it (their worker plugin gives the endpoint); a lazy result computed
    on the workers outside a run does."""
    configure_gdal()
