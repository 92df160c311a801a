"""The reduction: compiled chunk step, partials, merge tree, finalize."""
