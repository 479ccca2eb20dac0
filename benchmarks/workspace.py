"""A copy of the reference repository that the scenarios edit (never the original)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "examples" / "benchmark-reference"
NOTEBOOK = "analysis.ipynb"
ADDED_PACKAGE = "seaborn==0.13.2"  # pure Python; its dependencies are all in the reference already
MINIMAL_DROPS = ("scikit-learn",)  # the minimal example: numpy, pandas, matplotlib + JupyterLab


class Workspace:
    def __init__(self, root: Path, source: Path = REFERENCE):
        self.source = source
        self.repo = root / "reference"
        self.minimal = root / "minimal"
        self.minimal_node = root / "minimal-node"
        self.reset()
        self._write_minimal()

    def reset(self) -> None:
        """Back to the reference as it is in examples/ (same bytes, same modes)."""
        if self.repo.exists():
            shutil.rmtree(self.repo)
        shutil.copytree(self.source, self.repo)

    def edit_notebook(self, mark: str) -> None:
        """A code-only change: one markdown cell appended to the notebook."""
        path = self.repo / NOTEBOOK
        notebook = json.loads(path.read_text())
        cell_id = "edit-" + hashlib.sha256(mark.encode()).hexdigest()[:12]
        notebook["cells"].append({"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": [f"Edited by the benchmark ({mark})."]})
        path.write_text(json.dumps(notebook, indent=1) + "\n")

    def add_package(self, mark: str) -> None:
        """One package added to requirements.txt. The comment makes every repetition's file
        new to every cache (otherwise the second repetition would be a layer-cache hit)."""
        path = self.repo / "requirements.txt"
        path.write_text(path.read_text() + f"{ADDED_PACKAGE}  # added by the benchmark ({mark})\n")

    def _write_minimal(self) -> None:
        if self.minimal.exists():
            shutil.rmtree(self.minimal)
        shutil.copytree(self.source, self.minimal)
        path = self.minimal / "requirements.txt"
        kept = [line for line in path.read_text().splitlines() if not any(line.startswith(d) for d in MINIMAL_DROPS)]
        path.write_text("\n".join(kept) + "\n")
        # The same with a postBuild that runs npm: dsbuild then adds Debian's nodejs and npm.
        if self.minimal_node.exists():
            shutil.rmtree(self.minimal_node)
        shutil.copytree(self.minimal, self.minimal_node)
        post_build = self.minimal_node / "postBuild"
        post_build.write_text("#!/bin/bash\nnpm --version\n")
        post_build.chmod(0o755)
