"""The names of things, decided once: git refs, image references, image names and tags,
and the labels dsbuild puts on images and containers. Pure.

Modelled on KubeSpawner's slugs.py: each function states what it guarantees.

- `validate_ref` / `is_ref`: the one rule for a git ref (branch, tag or sha) taken from a
  user, a launch link or a spawn request. A valid ref is never read as an option by git.
- `validate_image_ref` / `is_image_ref`: the one rule for a Docker image reference
  (registry[:port]/path[:tag][@digest], Docker's grammar, lowercase path, at most 512).
- `source_key(source)`: the canonical text of a source (credentials, a trailing '/' and
  '.git' dropped, scheme and host lowercased); two spellings of one repository share it.
- `image_name(source, prefix)`: `<prefix>-<name slug>-<8 hex of the source key>`, a valid
  Docker repository name of at most 60 characters. Two different sources never share a
  name (up to a 32-bit hash collision, which `source_hash` in the labels catches), so they
  never share a tag or a build-context folder.
- `image_tag(content_tag, suffix)`: the commit's first 12 hex (or the folder's content id),
  plus `-<suffix>` when the build's environment options are not the defaults
  (`environment_suffix`), so builds that differ in what decides the environment never
  overwrite each other.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from .errors import SourceError

if TYPE_CHECKING:
    from .host import HostSettings
    from .plan import BuildOptions
    from .source import Source

# -- labels: every label name dsbuild writes or reads -------------------------

OCI_SOURCE = "org.opencontainers.image.source"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_CREATED = "org.opencontainers.image.created"
LABEL_PREFIX = "io.dsbuild."
VERSION_LABEL = LABEL_PREFIX + "version"  # on every image dsbuild built; spawners check it
REF_LABEL = LABEL_PREFIX + "ref"  # the commit sha the image was built from (or "" for a folder)
SOURCE_HASH_LABEL = LABEL_PREFIX + "source-hash"  # sha256 of source_key(): reuse checks it
BASE_IMAGE_LABEL = LABEL_PREFIX + "base-image"
BASE_IMAGE_ID_LABEL = LABEL_PREFIX + "base-image-id"
ENVIRONMENT_HASH_LABEL = LABEL_PREFIX + "environment-hash"
PIECES_LABEL = LABEL_PREFIX + "pieces"
OPTIONS_LABEL = LABEL_PREFIX + "options-hash"  # everything that decides the image; reuse checks it
ENVIRONMENT_OPTIONS_LABEL = LABEL_PREFIX + "environment-options"  # what the tag suffix stands for
LOCK_LABEL = LABEL_PREFIX + "lock-sha256"
LOCK_ORIGIN_LABEL = LABEL_PREFIX + "lock-origin"  # committed lock, resolved fresh, or resolved as of a date
ENVIRONMENT_LAYERS_LABEL = LABEL_PREFIX + "environment-layers"  # digest of the Dockerfile and dsbuild's context files (append.py)
BASE_CREATED_LABEL = LABEL_PREFIX + "base-image-created"  # when the base image was made (its snapshot of Debian)
PYTHON_LABEL = LABEL_PREFIX + "python"  # the Python the image has ("3.11", or "3.10.4 (uv-managed)")
PYTHON_REQUESTED_LABEL = LABEL_PREFIX + "python-requested"  # what the repository asked for, and where
RENDERING_KIND_LABEL = LABEL_PREFIX + "environment"  # environment.yml: says it is a PyPI rendering
SUBDIR_LABEL = LABEL_PREFIX + "subdir"  # --subdir: the folder of the repository that was built
# The incremental dependency layer (builder/increment.py): what lies under the dependency
# step (only on images that may be built upon), how many increments the image is from a
# full build (absent: it is one), and the image it was built upon.
STACK_LABEL = LABEL_PREFIX + "dependency-stack"
INCREMENT_LABEL = LABEL_PREFIX + "increment"
INCREMENTAL_FROM_LABEL = LABEL_PREFIX + "incremental-from"
BASE_PYTHONS_LABEL = LABEL_PREFIX + "base.pythons"  # on base images: "3.11=/usr/bin/python3.11 ..."
BASE_DEFAULT_PYTHON_LABEL = LABEL_PREFIX + "base.default-python"
BASE_SUITE_LABEL = LABEL_PREFIX + "base.suite"
RUN_LABEL = LABEL_PREFIX + "run"  # on containers `dsbuild run` started
HUB_LABEL = LABEL_PREFIX + "hub"  # on containers a local hub's spawner started

# -- refs ----------------------------------------------------------------------

# A conservative subset of what `git check-ref-format` allows, plus full or short shas.
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,254}$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def is_ref(ref: str) -> bool:
    """A plausible branch, tag or commit name that git cannot read as an option."""
    return (isinstance(ref, str) and bool(_REF.match(ref)) and ".." not in ref and "//" not in ref
            and not ref.endswith((".lock", "/", ".")))


def validate_ref(ref: str) -> str:
    """`ref` unchanged, or SourceError. Refs go to git as arguments, never to a shell."""
    if not is_ref(ref):
        raise SourceError(f"not a valid git ref: {ref!r}")
    return ref


def is_sha(ref: str) -> bool:
    return bool(_SHA.match(ref))


# -- image references ------------------------------------------------------------

# Docker's grammar: domain[:port]/ then lowercase path components joined by '.', '_', '__'
# or dashes; an optional tag; an optional digest.
_IMAGE_REF = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)


def is_image_ref(ref: object) -> bool:
    return isinstance(ref, str) and len(ref) <= 512 and bool(_IMAGE_REF.match(ref))


def validate_image_ref(ref: str, what: str = "image") -> str:
    """Image references go into `FROM` lines and command arguments: `ref`, or SourceError."""
    if not is_image_ref(ref):
        raise SourceError(f"not a valid {what} reference: {ref!r}")
    return ref


# -- image names and tags --------------------------------------------------------

_SLUG_PART = re.compile(r"[^a-z0-9]+")
SLUG_LENGTH = 40


def slug(text: str, length: int = SLUG_LENGTH) -> str:
    """Lowercase letters and digits joined by single dashes, at most `length`, never empty."""
    return _SLUG_PART.sub("-", text.lower()).strip("-")[:length].strip("-") or "repo"


_DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com"})
_SLASHES = re.compile(r"/{2,}")
_PATH_SAFE = "/~!$&'()*+,;=:@"


def _canonical_host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _canonical_path(path: str) -> str:
    path = quote(unquote(path), safe=_PATH_SAFE)
    path = _SLASHES.sub("/", path).rstrip("/")
    path = path.removesuffix(".git").rstrip("/")
    return path or "/"


def canonical_url(url: str) -> str:
    """One spelling of a git URL, so that image names, launch limits and build
    de-duplication count one repository however its URL is written:

    - no credentials; scheme and host in lower case, a trailing dot of the host dropped,
      IDNA hosts as punycode; the scheme's default port dropped (https 443, http 80, ssh 22,
      git 9418);
    - repeated and trailing slashes dropped, then one `.git` suffix; percent-encoding made
      canonical (`%7e` and `~` are one path); no query or fragment;
    - the path in lower case on hosts whose names are case-insensitive (github.com, gitlab.com);
    - `file://localhost/p` is `file:///p`; scp-like `user@host:path` keeps its form apart from
      the suffix.

    It is for naming and counting, not fetching: the URL as given is what git fetches."""
    url = url.strip()
    if "://" not in url:
        return url.rstrip("/").removesuffix(".git")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    path = _canonical_path(parts.path)
    if scheme == "file":
        return f"file://{path}"
    host = _canonical_host(parts.hostname or "")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if host in _CASE_INSENSITIVE_HOSTS:
        path = path.lower()
    return f"{scheme}://{netloc}{path}"


def source_key(source: Source) -> str:
    """The canonical text of a source: its canonical URL, or a folder's file:// URI."""
    path = getattr(source, "path", None)
    if isinstance(path, Path):
        return path.as_uri()
    return canonical_url(source.url)  # type: ignore[union-attr]


def source_hash(source: Source) -> str:
    """sha256 of `source_key(source)`: the `io.dsbuild.source-hash` label."""
    return hashlib.sha256(source_key(source).encode()).hexdigest()


def source_slug(source: Source, subdir: str | None = None) -> str:
    """`<slug of the repository's name[-subdir]>-<8 hex of the source key[#subdir]>`: at
    most 49 characters. Two folders of one repository (--subdir) are two images."""
    if not subdir:
        return f"{slug(source.name)}-{source_hash(source)[:8]}"
    digest = hashlib.sha256(f"{source_key(source)}#{subdir}".encode()).hexdigest()
    return f"{slug(source.name + '-' + subdir)}-{digest[:8]}"


def image_name(source: Source, prefix: str = "dsbuild", subdir: str | None = None) -> str:
    """`<prefix>-<source_slug>`."""
    return f"{prefix}-{source_slug(source, subdir)}"


_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def ref_tag(ref: str) -> str:
    """A valid Docker tag naming a git ref: the ref itself when it is one, else its
    characters made safe plus 8 hex of the ref (so `a/b` and `a-b` differ)."""
    if _TAG.match(ref):
        return ref
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", ref)[:64].lstrip(".-") or "ref"
    return f"{safe}-{hashlib.sha256(ref.encode()).hexdigest()[:8]}"


def image_tag(content_tag: str, suffix: str | None = None) -> str:
    """The tag for one commit (or folder content) built with one set of environment options."""
    return f"{content_tag}-{suffix}" if suffix else content_tag


def environment_options(options: BuildOptions, host: HostSettings) -> dict[str, object]:
    """The options that decide the environment and are not the defaults, by name."""
    from .plan import BuildOptions

    default = BuildOptions()
    chosen: dict[str, object] = {}
    if options.base_image != default.base_image:
        chosen["base"] = options.base_image
    if options.jupyter_packages != default.jupyter_packages:
        chosen["jupyter"] = list(options.jupyter_packages)
    if options.locked:
        chosen["locked"] = True
    if options.as_of:
        chosen["as-of"] = options.as_of
    if options.relock:
        chosen["relock"] = True
    if options.from_lock is not None:
        from .lock import lock_digest

        chosen["from-lock"] = lock_digest(options.from_lock)[:12]
    if host.index_url:  # credentials are not part of the environment, and never shown
        chosen["index"] = canonical_url(host.index_url)
    if host.extra_index_urls:
        chosen["extra-index"] = [canonical_url(url) for url in host.extra_index_urls]
    if options.python_downloads:
        chosen["python-downloads"] = True
    if options.user != default.user:
        chosen["user"] = f"{options.user.name}:{options.user.uid}"
    if options.keep_tests:
        chosen["keep-tests"] = True
    return chosen


def environment_suffix(chosen: dict[str, object]) -> str | None:
    """8 hex naming a set of non-default environment options; None for the defaults."""
    if not chosen:
        return None
    return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]


def describe_options(chosen: dict[str, object]) -> str:
    """`as-of=2024-01-01, locked` for the label and `dsbuild show`; "defaults" when none."""
    if not chosen:
        return "defaults"
    return ", ".join(k if v is True else f"{k}={','.join(v) if isinstance(v, list) else v}"
                     for k, v in sorted(chosen.items()))
