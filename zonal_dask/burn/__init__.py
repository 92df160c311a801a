"""Geometry to pixels for one chunk, exactly as GDAL burns each zone."""
