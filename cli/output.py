"""How the CLI talks to people: progress on stderr, results on stdout, one line per error."""

from __future__ import annotations

import functools
from typing import Callable

import click

from dsbuild.builder.errors import BuildFailed, DsbuildError
from dsbuild.builder.progress import LogLine, StepCached, StepDone, StepFailed, StepStarted
from dsbuild.builder.service import Built, Event, Status

_console = None


def __getattr__(name: str):
    """`err_console` (rich, for tables and the commands that print with it) is made on first
    use: `build` and `run` print with `say` and do not import rich (docs/benchmarks.md)."""
    global _console
    if name == "err_console":
        if _console is None:
            from rich.console import Console

            _console = Console(stderr=True, highlight=False, soft_wrap=True)
        return _console
    raise AttributeError(name)


def say(message: str, label: str = "", color: str = "cyan", style: str = "") -> None:
    """One line on stderr: an optional bold `[label] `, then the message as it is (no markup);
    `style` "dim" or "green" colours the message. Colours only on a terminal (click's echo)."""
    head = click.style(f"[{label}] ", fg=color, bold=True) if label else ""
    body = click.style(message, dim=True) if style == "dim" else click.style(message, fg=style) if style else message
    click.echo(head + body, err=True)


class UserError(click.ClickException):
    """A DsbuildError as click shows it: `Error: <line>` and the error's exit code."""

    def __init__(self, error: DsbuildError):
        super().__init__(str(error))
        self.exit_code = error.exit_code


def user_errors(command: Callable) -> Callable:
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BuildFailed as error:
            if error.log_tail and click.get_current_context().params.get("quiet", False):
                for line in error.log_tail[-10:]:
                    say(f"  | {line}", style="dim")
            raise UserError(error) from None
        except DsbuildError as error:
            raise UserError(error) from None

    return wrapper


class Progress:
    """Prints build events as they come; with quiet=True only failures and the result."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        match event:
            case Status(phase, message):
                say(message, phase)
            case StepStarted(step, total, phase, instruction):
                short = instruction.split("\n")[0]
                short = short if len(short) < 110 else short[:107] + "..."
                say(click.style(f"step {step}/{total} ", dim=True) + short, phase)
            case StepCached(step, phase):
                say(f"step {step} cached", phase, style="green")
            case LogLine(phase, text):
                say(f"  {phase} | {text}", style="dim")
            case StepDone(step, phase, seconds) if seconds >= 1:
                say(f"step {step} done in {seconds:.1f}s", phase, style="dim")
            case StepFailed(step, phase, message, _, _):
                say(f"step {step} failed: {message}", phase, color="red")
            case Built(image, _, _, skipped, _, cached, ran) if not skipped:
                say(f"{image} ({len(ran)} steps run, {len(cached)} cached)", "done", color="green")
