"""Zones: read, validated, reprojected onto the raster's CRS."""
