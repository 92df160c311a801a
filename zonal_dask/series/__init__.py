"""Time series: steps in, the vector data cube out."""
