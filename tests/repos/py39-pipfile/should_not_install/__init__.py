"""Installed only if the Pipfile names the local package."""
