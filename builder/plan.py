"""`plan(facts, base, options) -> BuildPlan`: which pieces apply and what they add.

The composition is all here, in PIECES order. Pure: no files, no engine."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from .errors import ConfigError
from .facts import RepoFacts
from .envlock import check_base, locked_apt, python_part
from .lock import LOCK_FILE, check_lock, lock_digest
from .pieces.base import Contribution, EnvFile, Piece, RepoInstall
from .pieces.conda import EnvironmentYmlPiece
from .pieces.dockerfile import DockerfilePiece
from .pieces.project import PROJECT_FILE, project_dependencies
from .pieces.python import PipfilePiece, RequirementsPiece, RuntimePiece, SetupPiece
from .pieces.scripts import PostBuildPiece, StartPiece
from .pieces.system import AptPiece, NodePiece
from .pieces.unsupported import UNSUPPORTED
from .pythons import DEFAULT_SUITE, PythonChoice, PythonInstall, PythonRequest, base_ref, choose_python, suite_for

# The repository's own Dockerfile wins outright (as on mybinder.org); then files whose
# sources are out of reach stop the build; then the Python stack, in layer order.
PIECES: tuple[Piece, ...] = (
    DockerfilePiece(),
    *UNSUPPORTED,
    RuntimePiece(),
    AptPiece(),
    NodePiece(),
    PipfilePiece(),
    EnvironmentYmlPiece(),
    RequirementsPiece(),
    SetupPiece(),
    PostBuildPiece(),
    StartPiece(),
)

# Installed into every image, so it runs alone (JupyterLab) and under JupyterHub
# (jupyterhub-singleuser). Pinned: the layer that installs them is shared by every repo.
JUPYTER_PACKAGES = ("jupyterlab==4.6.6", "jupyterhub==5.5.4")
# The newest releases that still run on older Pythons (JupyterLab 4.6 needs Python 3.10).
JUPYTER_FOR_PYTHON = {"3.9": ("jupyterlab==4.5.11", "jupyterhub==5.5.4")}
# pip, so that a running notebook can `pip install x` (uv is copied in from the build's own).
NOTEBOOK_TOOLS = ("pip",)
NOTEBOOK_FILE = "dsbuild-notebook.in"  # the Jupyter packages (and pip), resolved with the user's
OVERRIDES_FILE = "dsbuild-overrides.txt"
# Packages kept out of every environment (a uv override with a marker that is never true).
# rfc3987-syntax builds a grammar parser when imported; jsonschema imports it only if it
# is installed, so leaving it out costs only the "iri" format check and saves about 1 s
# of every JupyterLab start (measured by benchmarks/, docs/benchmarks.md).
OVERRIDES = ("rfc3987-syntax ; sys_platform == 'never'",)
DEFAULT_BASE_IMAGE = base_ref(DEFAULT_SUITE)  # "auto": the Debian release is picked by the Python asked for
_AS_OF = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$")


@dataclass(frozen=True)
class BaseFacts:
    """What the base image offers, read from its labels or by looking inside it once."""

    image: str
    pythons: tuple[PythonInstall, ...] = ()
    default_python: str | None = None  # the version `python3` runs
    image_id: str = ""
    suite: str = ""  # its Debian release, when its labels say

    def python(self, request: PythonRequest | None, exact: bool = False, downloads: bool = False) -> PythonChoice:
        return choose_python(self.image, self.pythons, self.default_python, request, exact, downloads)


_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class NotebookUser:
    """The user the image runs as, and whose home holds the repository. --user-id and
    --user-name set them, so that host folders mounted into the container keep their owner."""

    uid: int = 1000
    name: str = "jovyan"

    def __post_init__(self) -> None:
        if not 1000 <= self.uid <= 60000:
            raise ConfigError(f"--user-id must be between 1000 and 60000 (not a system user), got {self.uid}")
        if not _USER_NAME.match(self.name) or self.name == "root":
            raise ConfigError(f"--user-name must be a lower-case login name, got {self.name!r}")

    @property
    def home(self) -> str:
        return f"/home/{self.name}"


@dataclass(frozen=True)
class BuildOptions:
    base_image: str = DEFAULT_BASE_IMAGE
    jupyter_packages: tuple[str, ...] = JUPYTER_PACKAGES
    locked: bool = False  # the repository must hold requirements.lock (a committed lock wins anyway)
    relock: bool = False  # resolve again, even when the repository holds requirements.lock
    from_lock: str | None = None  # install this lock (`dsbuild verify` rebuilds an image from its own)
    as_of: str | None = None  # resolve as of this date (RFC 3339); Jupyter packages then float too
    exact_python: bool = False  # refuse rather than build with the nearest newer Python
    python_downloads: bool = False  # a Python no Debian base has is installed by uv (needs the download)
    user: NotebookUser = NotebookUser()
    keep_tests: bool = False  # leave the test suites that packages ship in site-packages (builder/trim.py)

    def __post_init__(self) -> None:
        if self.as_of is not None and self.as_of != "commit" and not _AS_OF.match(self.as_of):
            raise ConfigError(f"--as-of wants 'commit' or a date like 2023-06-30 or 2023-06-30T12:00:00Z, got {self.as_of!r}")
        if self.as_of and self.locked:
            raise ConfigError("--as-of and --locked exclude each other: a lock already fixes every version")
        if self.relock and self.locked:
            raise ConfigError("--relock and --locked exclude each other: one resolves again, the other installs the lock")

    def jupyter_for(self, python: str) -> tuple[str, ...]:
        """The Jupyter packages for that Python: the default pins, or the newest that run on it."""
        if self.jupyter_packages == JUPYTER_PACKAGES:
            return JUPYTER_FOR_PYTHON.get(python, JUPYTER_PACKAGES)
        return self.jupyter_packages

    def notebook_packages(self, python: str = "") -> tuple[str, ...]:
        """Pinned normally; as of a date, only the names, so they resolve as of then too."""
        if self.as_of:
            return tuple(re.split(r"[<>=!~]", spec, maxsplit=1)[0] for spec in self.jupyter_packages) + NOTEBOOK_TOOLS
        return self.jupyter_for(python) + NOTEBOOK_TOOLS


@dataclass(frozen=True)
class BuildPlan:
    base_image: str
    pieces: tuple[str, ...]
    python: PythonInstall | None = None
    python_requested: PythonRequest | None = None
    user: NotebookUser = NotebookUser()
    apt_packages: tuple[str, ...] = ()
    env_files: tuple[EnvFile, ...] = ()
    repo_installs: tuple[RepoInstall, ...] = ()
    # Projects whose dependencies come from the metadata their build backend writes in the
    # build container (setup.py, dynamic dependencies): pieces/project.py.
    project_metadata: tuple[RepoInstall, ...] = ()
    post_build: tuple[str, ...] = ()
    start: str | None = None
    jupyter_packages: tuple[str, ...] = JUPYTER_PACKAGES
    dockerfile: str | None = None  # the repository's own Dockerfile, built as it is
    locked: bool = False  # env_files is the lock, installed as it is
    lock_origin: str = "resolved fresh"  # LockChoice.describe(): says where the versions came from
    exclude_newer: str | None = None
    keep_tests: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def record_early(self) -> bool:
        """Nothing after the dependency step can install a package (no repository installs,
        no postBuild), so the record step comes before the repository's."""
        return not self.repo_installs and not self.post_build

    @property
    def repository_last(self) -> bool:
        """The repository's COPY is the generated Dockerfile's last step: a code-only change
        changes only that layer, which append.py can add without a build."""
        return not self.dockerfile and self.record_early and not self.start

    @property
    def project_extras(self) -> tuple[str, ...]:
        """The extras asked for of the projects whose metadata is built (`-e .[dev]`)."""
        return tuple(sorted({extra for project in self.project_metadata for extra in project.extras}))

    @property
    def environment_hash(self) -> str:
        """Names the environment (not the code): base, Python, packages and environment files."""
        data = {
            "base": self.base_image,
            "python": self.python.version if self.python else None,
            "apt": sorted(self.apt_packages),
            "env": {f.name: f.content.replace("\r\n", "\n").strip() for f in self.env_files},
            "jupyter": list(self.jupyter_packages),
            "dockerfile": self.dockerfile,
            "exclude_newer": self.exclude_newer,
        }
        if self.python and self.python.managed:
            data["python-managed"] = self.python.path
        if self.user != NotebookUser():
            data["user"] = [self.user.uid, self.user.name]
        if self.project_metadata:
            data["project-metadata"] = [p.target for p in self.project_metadata]
        if self.keep_tests:
            data["keep-tests"] = True
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def detected(facts: RepoFacts) -> tuple[Piece, ...]:
    return tuple(piece for piece in PIECES if piece.detect(facts))


def python_request(facts: RepoFacts) -> PythonRequest | None:
    """The Python the repository asks for (runtime.txt, then Pipfile, then environment.yml)."""
    pieces = detected(facts)
    if pieces and isinstance(pieces[0], DockerfilePiece):
        return None
    return next((r for r in (piece.contribute(facts).python for piece in pieces) if r), None)


def base_image_for(options: BuildOptions, request: PythonRequest | None) -> str:
    """The default base is "auto": the Debian release whose Python answers the request.
    Any other --base-image is used as it is."""
    if options.base_image != DEFAULT_BASE_IMAGE:
        return options.base_image
    return base_ref(suite_for(request, options.python_downloads))


def plan(facts: RepoFacts, base: BaseFacts, options: BuildOptions = BuildOptions()) -> BuildPlan:
    if options.as_of == "commit":
        raise ValueError("--as-of commit is replaced by the commit's date before planning")
    pieces = detected(facts)
    if pieces and isinstance(pieces[0], DockerfilePiece):
        own = pieces[0].contribute(facts)
        ignored = tuple(sorted(name for name in facts.files if name != "Dockerfile"))
        notes = (f"the repository's Dockerfile is built as it is; ignored: {', '.join(ignored)}",) if ignored else ()
        return BuildPlan(base_image=options.base_image, pieces=(pieces[0].name,), dockerfile=own.dockerfile, notes=notes)
    parts = [piece.contribute(facts) for piece in pieces]
    merged = _merge(parts)
    notes = merged.notes if pieces else ("no configuration files found: JupyterLab only, with the repository copied in",)
    python = base.python(merged.python, options.exact_python, options.python_downloads)
    notes += (python.warning,) if python.warning else ()
    choice = lock_choice(facts, options)
    apt = merged.apt_packages
    project_env, project_metadata = project_dependencies(merged.repo_installs, _root_pyproject(facts))
    if choice.locked:
        env_files, apt, lock_notes = _from_lock(facts, base, choice, merged, options, project_env)
        notes += lock_notes
    else:
        notebook = EnvFile(NOTEBOOK_FILE, "".join(f"{p}\n" for p in options.notebook_packages(python.install.version)))
        overrides = EnvFile(OVERRIDES_FILE, "".join(f"{o}\n" for o in OVERRIDES), install=False)
        env_files = merged.env_files + project_env + (notebook, overrides)
    return BuildPlan(
        base_image=options.base_image,
        pieces=tuple(p.name for p in pieces),
        python=python.install,
        python_requested=python.requested,
        user=options.user,
        apt_packages=apt,
        env_files=env_files,
        repo_installs=merged.repo_installs,
        project_metadata=project_metadata,
        post_build=merged.post_build,
        start=merged.start,
        jupyter_packages=options.jupyter_for(python.install.version),
        locked=choice.locked,
        lock_origin=choice.describe(),
        exclude_newer=options.as_of,
        keep_tests=options.keep_tests,
        notes=notes,
    )


FRESH, AS_OF, COMMITTED, GIVEN = "fresh", "as-of", "committed", "given"


@dataclass(frozen=True)
class LockChoice:
    """Where a build's package versions come from. `lock_choice` is the one decision,
    for `build`, `run`, launch links and `verify` alike."""

    kind: str  # FRESH, AS_OF, COMMITTED or GIVEN
    where: str = ""  # the lock's path in the repository, or the date for AS_OF
    given: str | None = None

    @property
    def locked(self) -> bool:
        return self.kind in (COMMITTED, GIVEN)

    def text(self, facts: RepoFacts) -> str:
        return self.given if self.given is not None else facts.text(LOCK_FILE)

    def describe(self) -> str:
        if self.kind == COMMITTED:
            return f"from the committed lock {self.where}"
        if self.kind == GIVEN:
            return f"from a given lock (sha256 {self.where[:12]})"
        return f"resolved as of {self.where}" if self.kind == AS_OF else "resolved fresh"


def lock_choice(facts: RepoFacts, options: BuildOptions) -> LockChoice:
    """A lock given (verify) wins; then a committed requirements.lock, as Pipfile.lock wins
    over Pipfile, unless --relock or --as-of asks to resolve again; --locked insists on one."""
    if options.from_lock is not None:
        return LockChoice(GIVEN, lock_digest(options.from_lock), options.from_lock)
    if facts.has(LOCK_FILE) and not options.relock and not options.as_of:
        return LockChoice(COMMITTED, facts.path(LOCK_FILE))
    if options.locked:
        raise ConfigError(f"--locked needs {facts.path(LOCK_FILE)}; write it with `dsbuild lock REPO --write`")
    return LockChoice(AS_OF, options.as_of) if options.as_of else LockChoice(FRESH)


def _root_pyproject(facts: RepoFacts) -> str | None:
    """The repository root's pyproject.toml (scanned only when no binder folder is used)."""
    return facts.text("pyproject.toml") if not facts.config_dir and facts.has("pyproject.toml") else None


def _from_lock(
    facts: RepoFacts, base: BaseFacts, choice: LockChoice, merged: Contribution, options: BuildOptions,
    project_env: tuple[EnvFile, ...] = (),
) -> tuple[tuple[EnvFile, ...], tuple[str, ...], tuple[str, ...]]:
    """A locked build: the lock for the Python packages, its Debian versions for apt.txt
    (when it records them), and the base it was made on checked."""
    lock = choice.text(facts)
    env_files = (_locked_env(facts, merged.env_files + project_env, lock),)
    apt = merged.apt_packages
    if apt:
        apt = locked_apt(apt, lock, facts.path("apt.txt")) or apt
    base_note = check_base(lock, base.suite, base.image_id, strict=options.locked)
    return env_files, apt, (base_note,) if base_note else ()


def _locked_env(facts: RepoFacts, env_files: tuple[EnvFile, ...], lock: str) -> EnvFile:
    """The lock, checked against the repository's requirements (dsbuild's own lines dropped)."""
    for env_file in env_files:
        where = "pyproject.toml [project] dependencies" if env_file.name == PROJECT_FILE else facts.path(env_file.name)
        check_lock(env_file.content, lock, where)
    check_lock("\n".join(JUPYTER_NAMES), lock, "the Jupyter packages")
    return EnvFile(LOCK_FILE, python_part(lock))


JUPYTER_NAMES = ("jupyterlab", "jupyterhub")


def _merge(parts: list[Contribution]) -> Contribution:
    apt: list[str] = []
    for part in parts:
        apt.extend(p for p in part.apt_packages if p not in apt)
    return Contribution(
        apt_packages=tuple(apt),
        env_files=tuple(f for part in parts for f in part.env_files),
        repo_installs=_one_each(r for part in parts for r in part.repo_installs),
        post_build=tuple(s for part in parts for s in part.post_build),
        start=next((part.start for part in parts if part.start), None),
        python=next((part.python for part in parts if part.python), None),
        notes=tuple(n for part in parts for n in part.notes),
    )


def _one_each(installs) -> tuple[RepoInstall, ...]:
    """Each folder installed once (`-e .` in requirements.txt and setup.py name the same)."""
    seen: dict[str, RepoInstall] = {}
    for install in installs:
        key = install.path if install.project else f"-r {install.path}"
        seen.setdefault(key, install)
    return tuple(seen.values())
