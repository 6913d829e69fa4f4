"""The git index holds source, docs and small fixtures only.

A virtualenv, build output, bytecode or a compiled binary in the index breaks a fresh clone (the
committed `.venv` once made `make demo` fail on every machine but one), so this test reads
`git ls-files` and names every offending path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_DIRS = {".venv", "venv", "site-packages", "__pycache__", "build", "dist", ".eggs"}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".so", ".whl", ".egg")
BINARY_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
MAX_FIXTURE_BYTES = 1_000_000


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to check")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def _problem(path: str) -> str | None:
    parts = path.split("/")
    bad_dirs = FORBIDDEN_DIRS.intersection(parts[:-1])
    if bad_dirs or any(p.endswith(".egg-info") or p.startswith(".venv") for p in parts[:-1]):
        return f"under {', '.join(sorted(bad_dirs)) or 'a virtualenv or egg-info'}"
    if path.endswith(FORBIDDEN_SUFFIXES):
        return "build output or bytecode"
    full = ROOT / path
    if full.is_symlink() or not full.is_file():
        return None
    with full.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(BINARY_MAGIC):
        return "a compiled binary"
    if os.access(full, os.X_OK) and not head.startswith(b"#!"):
        return "an executable without a shebang (a binary?)"
    if full.stat().st_size > MAX_FIXTURE_BYTES:
        return f"larger than {MAX_FIXTURE_BYTES} bytes: not a small fixture"
    return None


def test_index_holds_only_source_docs_and_small_fixtures() -> None:
    problems = [f"{p}: {why}" for p in _tracked() if (why := _problem(p))]
    assert not problems, "tracked files that do not belong in git:\n" + "\n".join(problems)


def test_guard_recognises_what_it_must_refuse() -> None:
    assert _problem(".venv/bin/python3") is not None
    assert _problem("x/lib/python3.11/site-packages/redis/__init__.py") is not None
    assert _problem("taskqueue/__pycache__/jobs.cpython-311.pyc") is not None
    assert _problem("build/lib/taskqueue/jobs.py") is not None
    assert _problem("dist/taskqueue-0.1.0.tar.gz") is not None
    assert _problem("taskqueue/jobs.py") is None


def test_the_package_metadata_installs_without_deprecation_warnings() -> None:
    """setuptools warns (three times per install) about ``project.license`` as a TOML table and
    about license classifiers: the licence is an SPDX string, and the setuptools that reads it
    (77+) is the one the build requires."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(meta["project"]["license"], str)
    assert not [c for c in meta["project"].get("classifiers", []) if c.startswith("License ::")]
    assert "setuptools>=77" in meta["build-system"]["requires"]
