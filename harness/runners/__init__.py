"""Runners: they time, call and write versioned JSON. Numerics live in the modules they call."""
