"""Coverage fractions and line lengths per cell, and exactextract's weights."""
