"""Version of the sslkeypoint package."""

__version__ = "0.10.0"
