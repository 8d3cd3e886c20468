"""LGSP Hub: integration and data-sharing hub for Vietnamese local government."""

__version__ = "0.1.0"
