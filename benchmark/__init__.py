"""FaceSec Bench: an ISO/IEC 24745-style security evaluation harness for protected face data."""

__version__ = "0.1.0"
__all__ = ["__version__"]
