"""What a repository's own Dockerfile may not do on a public builder (pure).

BuildKit cache ids are global to the engine and guessable, so a `RUN --mount=type=cache,
id=dsbuild-uv-...` in a repository's Dockerfile would reach dsbuild's package caches (or
another repository's); a `--mount=type=secret` could ask for dsbuild's index credentials
(none are passed to such builds, but refuse it anyway), and a `# syntax=` line would
run a frontend image of the repository's choosing with BuildKit's full power. So by
default any RUN flag `--mount` and any `syntax` directive are refused; BuildPolicy's
`dockerfile_mounts` lets a trusted builder allow them.

The check is deliberately coarse: line continuations (with `\\` or a backtick escape,
and comment lines inside them) are joined and all whitespace dropped before looking,
so `--mo\\<newline>unt` is caught too. A false refusal (the text in an echo) is
acceptable; a missed mount is not."""

from __future__ import annotations

import re

from .errors import ConfigError

_DIRECTIVE = re.compile(r"^\s*#\s*(syntax|escape)\s*=\s*(\S*)", re.IGNORECASE)
_COMMENT = re.compile(r"^\s*#")


def check_repo_dockerfile(text: str, where: str = "Dockerfile") -> None:
    """Raise ConfigError if the Dockerfile asks for mounts or another frontend."""
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if not match:
            break  # parser directives only come first
        if match.group(1).lower() == "syntax":
            raise ConfigError(f"{where}: '# syntax=' (another Dockerfile frontend) is not allowed on this builder")
    body = "\n".join(line for line in text.splitlines() if not _COMMENT.match(line))
    squashed = re.sub(r"[\s\\`]+", "", body).lower()
    if "--mount" in squashed:
        raise ConfigError(
            f"{where}: RUN --mount is not allowed on this builder (it could reach the build caches "
            "that other repositories use); install without it"
        )
