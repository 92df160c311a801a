"""``python -m zonal_dask.cli``: the command line."""

from .main import console

console()
