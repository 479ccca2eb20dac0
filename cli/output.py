"""How the CLI talks to people: progress on stderr, results on stdout, one line per error."""

from __future__ import annotations

import functools
from typing import Callable

import click
from rich.console import Console
from rich.text import Text

from dsbuild.builder.errors import BuildFailed, DsbuildError
from dsbuild.builder.progress import LogLine, StepCached, StepDone, StepFailed, StepStarted
from dsbuild.builder.service import Built, Event, Status

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
                    err_console.print(Text(f"  | {line}", style="dim"))
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
                err_console.print(Text.assemble((f"[{phase}] ", "bold cyan"), message))
            case StepStarted(step, total, phase, instruction):
                short = instruction.split("\n")[0]
                short = short if len(short) < 110 else short[:107] + "..."
                err_console.print(Text.assemble((f"[{phase}] ", "bold cyan"), (f"step {step}/{total} ", "dim"), short))
            case StepCached(step, phase):
                err_console.print(Text.assemble((f"[{phase}] ", "bold cyan"), (f"step {step} cached", "green")))
            case LogLine(phase, text):
                err_console.print(Text(f"  {phase} | {text}", style="dim"))
            case StepDone(step, phase, seconds) if seconds >= 1:
                err_console.print(Text.assemble((f"[{phase}] ", "bold cyan"), (f"step {step} done in {seconds:.1f}s", "dim")))
            case StepFailed(step, phase, message, _, _):
                err_console.print(Text.assemble((f"[{phase}] ", "bold red"), f"step {step} failed: {message}"))
            case Built(image, _, _, skipped, _, cached, ran) if not skipped:
                err_console.print(Text.assemble(("[done] ", "bold green"), f"{image} ({len(ran)} steps run, {len(cached)} cached)"))
