"""One import name: an install puts ``raftspec`` on the import path and nothing else."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("protocol", "reference", "spec", "checker", "traces", "node")


def test_the_packages_import_as_raftspec_and_the_folder_names_do_not(tmp_path: Path) -> None:
    code = ("import importlib\n"
            f"for name in {FOLDERS!r}:\n"
            "    importlib.import_module('raftspec.' + name)\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ModuleNotFoundError:\n"
            "        continue\n"
            "    raise SystemExit(f'{name} is importable as a top-level name')\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)


def test_every_package_folder_is_listed_for_installation() -> None:
    """pyproject lists packages explicitly (the folders map onto raftspec.*): a new sub-package
    missing from the list would be left out of a non-editable install."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = {"raftspec"}
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *parts)))
    for init in (ROOT / "raftspec").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    assert all(name.startswith("raftspec") for name in listed)
    assert found == listed, found ^ listed
