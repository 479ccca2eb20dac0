"""builder/bytecode.py on real files: hash-based bytecode, the same bytes twice, and only
for files that have none yet (so a later step's layer holds only its own files)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from dsbuild.builder.bytecode import main, sources

SCRIPT = Path(__file__).resolve().parents[2] / "builder" / "bytecode.py"


def site(tmp_path: Path) -> Path:
    root = tmp_path / "site-packages"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("from .sub import mod\n")
    (root / "pkg" / "sub" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "mod.py").write_text("VALUE = {'a': (1, 2.5, 'x' * 3)}\n")
    (root / "pkg" / "py2_template.py").write_text("print 'not python 3'\n")
    return root


def test_bytecode_is_hash_based_unchecked_and_the_same_every_time(tmp_path):
    root = site(tmp_path)
    assert main([str(root)]) == 0
    pyc = Path(importlib.util.cache_from_source(str(root / "pkg" / "sub" / "mod.py")))
    first = pyc.read_bytes()
    flags = int.from_bytes(first[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked (PEP 552): no source time inside
    os.utime(root / "pkg" / "sub" / "mod.py", (315532800, 315532800))
    for folder in root.rglob("__pycache__"):
        for f in folder.iterdir():
            f.unlink()
    main([str(root)])
    assert pyc.read_bytes() == first
    assert not Path(importlib.util.cache_from_source(str(root / "pkg" / "py2_template.py"))).exists()


def test_files_with_bytecode_are_left_alone(tmp_path, capsys):
    root = site(tmp_path)
    main([str(root)])
    assert "compiled 3 of 4 files" in capsys.readouterr().out
    pyc = Path(importlib.util.cache_from_source(str(root / "pkg" / "__init__.py")))
    before = pyc.stat().st_mtime_ns
    (root / "pkg" / "new.py").write_text("X = 1\n")
    assert [Path(p).name for p in sources(root)] == ["py2_template.py", "new.py"] or \
        sorted(Path(p).name for p in sources(root)) == ["new.py", "py2_template.py"]
    main([str(root)])
    assert "compiled 1 of 2 files" in capsys.readouterr().out
    assert pyc.stat().st_mtime_ns == before


def test_the_compiled_modules_import_without_writing_bytecode(tmp_path):
    root = site(tmp_path)
    subprocess.run([sys.executable, str(SCRIPT), str(root)], check=True, capture_output=True)
    for path in root.rglob("*.py"):
        os.utime(path, (315532800, 315532800))  # as the build leaves them
    listing = sorted(p.name for p in root.rglob("*.pyc"))
    out = subprocess.run([sys.executable, "-c", "import pkg.sub.mod as m; print(m.VALUE['a'][2])"],
                         cwd=root, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "xxx"
    assert sorted(p.name for p in root.rglob("*.pyc")) == listing  # nothing recompiled


def installed_site(tmp_path: Path) -> Path:
    """Two installed distributions: `wanted` (module wanted_mod, which imports helper) and `other`."""
    root = tmp_path / "site-packages"
    for dist, module, body in (("wanted", "wanted_mod", "from wanted_mod import helper\n"), ("other", "other_mod", "")):
        (root / module).mkdir(parents=True)
        (root / module / "__init__.py").write_text(body)
        (root / module / "helper.py").write_text("X = 1\n")
        (root / module / "unused.py").write_text("Y = 2\n")
        info = root / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "RECORD").write_text("".join(f"{module}/{n},,\n" for n in ("__init__.py", "helper.py", "unused.py")))
    return root


def test_selective_bytecode_compiles_only_what_the_requirements_imports_load(tmp_path, monkeypatch, capsys):
    root = installed_site(tmp_path)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# a comment\n-r other.txt\nWanted==1.0 ; python_version >= '3'\n")
    assert main(["--requirements", str(requirements), str(root)]) == 0
    compiled = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.pyc"))
    assert [c.split("/__pycache__/")[0] + "/" + c.rsplit("/", 1)[1].split(".")[0] for c in compiled] == \
        ["wanted_mod/__init__", "wanted_mod/helper"]
    assert "compiled 2 of 2 files (the modules 1 imports load)" in capsys.readouterr().out


def test_a_failed_probe_compiles_everything(tmp_path, monkeypatch, capsys):
    import dsbuild.builder.bytecode as bytecode

    root = installed_site(tmp_path)
    monkeypatch.setattr(bytecode, "loaded_files", lambda modules, start: None)
    assert main(["--start", str(root)]) == 0
    assert len(list(root.rglob("*.pyc"))) == 6
    assert "(the import probe failed)" in capsys.readouterr().out


def test_an_import_that_fails_inside_its_module_is_compiled_too(tmp_path, monkeypatch):
    """Python writes bytecode for a module whose own imports then fail (e.g. an optional
    `socks` support module): the probe compiles it too, so nothing is written at run time."""
    from dsbuild.builder.bytecode import loaded_files

    root = installed_site(tmp_path)
    (root / "wanted_mod" / "optional.py").write_text("import not_installed_anywhere\n")
    (root / "wanted_mod" / "__init__.py").write_text("try:\n    from . import optional\nexcept ImportError:\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(root))
    files = loaded_files(["wanted_mod"], start=False)
    assert files is not None and str(root / "wanted_mod" / "optional.py") in files
