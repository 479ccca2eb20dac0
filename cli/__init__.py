"""dsbuild command line: one click group, commands registered from each part."""

from .main import main

__all__ = ["main"]
