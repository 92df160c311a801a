"""A quick-look map: one statistic as a choropleth of the zones.

``choropleth`` draws a picture (PNG, SVG, PDF ...) with matplotlib;
``interactive_map`` writes one HTML file (geopandas' ``explore``: folium and
Leaflet) in which each zone's tooltip shows every statistic. Both are in the
``plot`` extra (``pip install 'zonal-dask[plot]'``), imported only when a map
is drawn. Figures are drawn on matplotlib's Agg canvas directly, never through
pyplot's global state, so drawing a map changes nothing in the caller's
matplotlib session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import rasterio
import xarray as xr

from ..errors import OutputError, RasterError
from .writers import check_output, replace_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

HTML_SUFFIXES = (".html", ".htm")
NO_DATA_STYLE: dict[str, Any] = {
    "facecolor": "white",
    "edgecolor": "0.45",
    "hatch": "////",
}


def require_matplotlib() -> None:
    """Raise a one-line ``OutputError`` if matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OutputError(
            "drawing a map needs matplotlib: pip install matplotlib"
        ) from None


def choropleth(
    features: gpd.GeoDataFrame,
    column: str,
    *,
    raster: str | os.PathLike[str] | xr.DataArray | None = None,
    band: int = 1,
    units: str | None = None,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    ax: Axes | None = None,
    cmap: str = "viridis",
    figsize: tuple[float, float] = (8.0, 6.0),
    dpi: int = 100,
) -> Figure:
    """Draw one statistic of the zones as a choropleth map.

    Zones whose value is NaN (no valid pixel) are drawn white and hatched, and
    named in a legend with their number.

    Parameters
    ----------
    features
        Zones with the statistic as a column, e.g. the result of
        ``zonal_stats(..., geometry=True)``.
    column
        The column to draw.
    raster
        The raster the statistic summarises: names the map in the title and
        gives the units (its band's unit, or a ``units`` tag or attribute).
    band
        1-based band of ``raster`` whose unit is read.
    units
        Units for the colour bar's label, instead of the raster's.
    title
        Instead of ``"<column> of <raster name>"``.
    path
        If given, the figure is saved there (format from the extension, e.g.
        ``.png``), written to a temporary file and renamed into place.
    overwrite
        Replace ``path`` if it exists.
    ax
        Draw into these axes instead of a new figure.
    cmap, figsize, dpi
        Colour map, figure size in inches and resolution of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if column not in features.columns:
        raise OutputError(
            f"no column {column!r} to map; columns are: "
            + ", ".join(c for c in features.columns if c != features.geometry.name)
        )
    if units is None and raster is not None:
        units = raster_units(raster, band)
    if title is None:
        title = column if raster is None else f"{column} of {raster_name(raster)}"
    own_figure = ax is None
    if ax is None:
        figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
    else:
        figure = ax.get_figure()  # type: ignore[assignment]
    missing = features[column].isna()
    label = f"{column} ({units})" if units else column
    if missing.all():
        features.plot(ax=ax, **NO_DATA_STYLE)
    else:
        features.plot(
            ax=ax,
            column=column,
            cmap=cmap,
            legend=True,
            legend_kwds={"label": label, "shrink": 0.8},
            missing_kwds=NO_DATA_STYLE,
            edgecolor="0.3",
            linewidth=0.3,
        )
    if missing.any():
        n = int(missing.sum())
        label = f"no data ({n} zone{'' if n == 1 else 's'})"
        ax.legend(
            handles=[Patch(**NO_DATA_STYLE, label=label)],
            loc="lower left",
            fontsize="small",
        )
    if own_figure:  # above the colour bar too, whatever the map's shape
        figure.suptitle(title)
    else:
        ax.set_title(title)
    ax.set_axis_off()
    if path is not None:
        save(figure, path, overwrite=overwrite)
    return figure


def require_folium() -> None:
    """Raise a one-line ``OutputError`` if what ``interactive_map`` needs is
    not installed."""
    for module in ("folium", "mapclassify", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            raise OutputError(
                f"an interactive map needs {module}: pip install folium mapclassify "
                f"matplotlib (the plot extra)"
            ) from None


def interactive_map(
    features: gpd.GeoDataFrame,
    column: str,
    *,
    tooltip: list[str] | None = None,
    raster: str | os.PathLike[str] | xr.DataArray | None = None,
    band: int = 1,
    units: str | None = None,
    path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    cmap: str = "viridis",
) -> Any:
    """One statistic of the zones as an interactive choropleth (a Leaflet map
    in one HTML file, the zones and their values inside it), every statistic
    in each zone's tooltip.

    Zones whose value is NaN (no valid pixel) are white, "no data" in the
    legend. The page loads Leaflet and the OpenStreetMap background from the
    web, as geopandas' ``explore`` does.

    Parameters
    ----------
    features
        Zones with the statistics as columns, in a known CRS (the result of
        ``zonal_stats(..., geometry=True)``).
    column
        The column to colour by.
    tooltip
        The columns each zone's tooltip shows, the index's name among them if
        wanted (default: the index when it is named, then every column but
        the geometry).
    raster, band, units
        As for ``choropleth``: the legend's units.
    path
        If given, the page is written there (``.html``), atomically.
    overwrite
        Replace ``path`` if it exists.
    cmap
        A matplotlib colour map.

    Returns
    -------
    folium.Map
    """
    require_folium()
    if column not in features.columns:
        raise OutputError(
            f"no column {column!r} to map; columns are: "
            + ", ".join(c for c in features.columns if c != features.geometry.name)
        )
    if features.crs is None:
        raise OutputError("an interactive map needs zones with a CRS")
    if units is None and raster is not None:
        units = raster_units(raster, band)
    index = features.index.name
    index = None if index is None or index in features.columns else str(index)
    geometry = features.geometry.name
    fields = list(
        tooltip or [*([index] if index else []), *features.columns.drop(geometry)]
    )
    shown = features.reset_index() if index in fields else features
    caption = f"{column} ({units})" if units else column
    if features[column].isna().all():  # nothing to colour: every zone "no data"
        page = shown.explore(color="white", tooltip=fields)
    else:
        page = shown.explore(
            column=column,
            cmap=cmap,
            tooltip=fields,
            legend_kwds={"caption": caption},
            missing_kwds={"color": "white", "label": "no data"},
        )
    if path is not None:
        check_map_path(path, overwrite=overwrite)
        replace_atomically(
            Path(path), lambda tmp: page.save(str(tmp)), overwrite=overwrite
        )
    return page


def save(
    figure: Figure, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Save ``figure`` atomically; the format follows the extension."""
    path = Path(path)
    fmt = check_map_path(path, overwrite=overwrite)
    return replace_atomically(
        path, lambda tmp: figure.savefig(tmp, format=fmt), overwrite=overwrite
    )


def check_map_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Refuse a map path before anything is computed: no matplotlib (no
    folium for ``.html``), a format matplotlib cannot write, an existing file.
    Returns the format."""
    path = Path(path)
    if path.suffix.lower() in HTML_SUFFIXES:
        require_folium()
        check_output(path, overwrite=overwrite)
        return "html"
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = path.suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise OutputError(
            f"{path}: cannot draw a map as {fmt or '(none)'!r}; "
            f"use one of {', '.join('.' + s for s in sorted(supported))}"
        )
    check_output(path, overwrite=overwrite)
    return fmt


def raster_name(raster: str | os.PathLike[str] | xr.DataArray) -> str:
    """A short name for titles: the file name, or the DataArray's name."""
    if isinstance(raster, xr.DataArray):
        return str(raster.name) if raster.name is not None else "raster"
    return os.fspath(raster).rstrip("/").rsplit("/", 1)[-1]


def raster_units(
    raster: str | os.PathLike[str] | xr.DataArray, band: int = 1
) -> str | None:
    """The units of a raster band: GDAL's band unit, else a ``units`` tag
    (band, then dataset), or a DataArray's ``units`` attribute."""
    if isinstance(raster, xr.DataArray):
        return _units(raster.attrs)
    try:
        with rasterio.open(raster) as src:
            if not 1 <= band <= src.count:
                return None
            unit = src.units[band - 1]
            return unit or _units(src.tags(band)) or _units(src.tags())
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(
            f"{os.fspath(raster)}: cannot read its units ({err})"
        ) from None


def _units(tags: dict[str, Any]) -> str | None:
    for key in ("units", "unit", "UNITS", "UNIT"):
        value = tags.get(key)
        if value:
            return str(value)
    return None
