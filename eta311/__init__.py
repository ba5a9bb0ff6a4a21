"""311 ETA: how long New York will take to resolve a 311 complaint, served over HTTP."""

__version__ = "1.0.0"
