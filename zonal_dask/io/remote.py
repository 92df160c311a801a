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
plan and compute it (``run/process_state.py``), and to the workers of a
LocalCluster it starts; importing zonal_dask changes no variable. Workers
started elsewhere (``dask worker``) call it with ``--preload
zonal_dask.io.remote``, or are given GDAL's variables directly; a lazy result
computed later, outside a run, needs GDAL's variables set (or
``configure_gdal()`` called) in the process that reads.

Credentials never travel in the task graph: each worker reads them from its
own environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["configure_gdal", "dask_setup", "gdal_options"]


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
    """Hook for ``dask worker --preload zonal_dask.io.remote``."""
    configure_gdal()
