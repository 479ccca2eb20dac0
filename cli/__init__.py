"""dsbuild command line: `dsbuild.cli.main` is the click group with every command.

It is assembled in `app.py` on first use (PEP 562 `__getattr__`), so that importing a
helper such as `dsbuild.cli.output` does not import every part of the product."""


def __getattr__(name: str):
    if name == "main":
        from .app import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["main"]
