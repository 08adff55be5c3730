"""cam-bench: a benchmark and validation harness for Class Activation Maps."""
__version__ = "0.1.0"
