"""Rasters in, tables and maps out: opening, masks, common grids, writers."""
