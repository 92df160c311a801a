"""A run's surroundings: scheduler, progress, checkpoints, process state."""
