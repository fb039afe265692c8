"""Version of the sslkeypoint package."""

__version__ = "0.8.0"
