"""builder/trim.py on real folders: which test suites go, which stay, and the bytes reported."""

from pathlib import Path

from dsbuild.builder.trim import main, removable_folders, trim_tests


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def site(tmp_path: Path) -> Path:
    root = tmp_path / "site-packages"
    write(root / "pandas" / "__init__.py")
    write(root / "pandas" / "tests" / "__init__.py")
    write(root / "pandas" / "tests" / "test_frame.py", "def test_a(): pass\n" * 100)
    write(root / "pandas" / "tests" / "io" / "data" / "table.csv", "a,b\n" * 100)
    write(root / "pandas" / "tests" / "conftest.py")
    write(root / "scipy" / "linalg" / "tests" / "test_basic.py")
    write(root / "scipy" / "linalg" / "tests" / "basic_test.py")
    # Helpers next to the tests: the package may import them at run time.
    write(root / "astropy" / "tests" / "runner.py")
    write(root / "astropy" / "tests" / "test_runner.py")
    write(root / "tornado" / "test" / "util.py")
    # A top-level package called tests is somebody's code, and metadata is never touched.
    write(root / "tests" / "test_x.py")
    write(root / "numpy-2.0.dist-info" / "tests" / "test_y.py")
    write(root / "numpy" / "testing" / "__init__.py")
    return root


def test_only_folders_that_hold_nothing_but_tests_are_removed(tmp_path):
    root = site(tmp_path)
    assert [p.relative_to(root).as_posix() for p in removable_folders(root)] == ["pandas/tests", "scipy/linalg/tests"]
    folders, freed = trim_tests(root)
    assert folders == 2
    assert freed == len("def test_a(): pass\n") * 100 + len("a,b\n") * 100 + 4 * len("x = 1\n")
    assert not (root / "pandas" / "tests").exists() and (root / "pandas" / "__init__.py").exists()
    assert not (root / "scipy" / "linalg" / "tests").exists() and (root / "scipy" / "linalg").is_dir()
    for kept in ("astropy/tests/runner.py", "tornado/test/util.py", "tests/test_x.py",
                 "numpy-2.0.dist-info/tests/test_y.py", "numpy/testing/__init__.py"):
        assert (root / kept).is_file(), kept


def test_a_symlinked_tests_folder_is_not_followed(tmp_path):
    root = tmp_path / "site-packages"
    outside = write(tmp_path / "elsewhere" / "test_keep.py").parent
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "tests").symlink_to(outside)
    assert trim_tests(root) == (0, 0)
    assert (outside / "test_keep.py").is_file()


def test_main_reports_each_folder_it_trimmed(tmp_path, capsys):
    root = site(tmp_path)
    assert main([str(root), str(tmp_path / "no-such-site")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("dsbuild-trim: removed 2 test folders, ") and out[0].endswith(f"from {root}")


def test_the_records_list_only_files_that_remain(tmp_path):
    root = site(tmp_path)
    record = write(root / "pandas-3.0.dist-info" / "RECORD",
                   "pandas/__init__.py,sha256=abc,6\npandas/tests/test_frame.py,sha256=def,1900\n"
                   "\"pandas/tests/io/data/a,b.csv\",sha256=x,1\npandas-3.0.dist-info/RECORD,,\n")
    untouched = write(root / "astropy-7.0.dist-info" / "RECORD", "astropy/tests/runner.py,sha256=x,6\n")
    trim_tests(root)
    assert record.read_text() == "pandas/__init__.py,sha256=abc,6\npandas-3.0.dist-info/RECORD,,\n"
    assert untouched.read_text() == "astropy/tests/runner.py,sha256=x,6\n"
