#!/usr/bin/env python3
"""Set up and run the project with nothing but Python installed.

    python3 dev.py serve [--demo] [receivables serve options]   # API on SQLite, migrated
    python3 dev.py test [pytest options]                        # the whole test suite

Both create `.venv` on first use and reinstall when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
MARKER = VENV / ".installed-from"


def _ensure_environment() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if MARKER.exists() and MARKER.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing the project and its test tools into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    MARKER.write_text(wanted)


def _run(*command: str) -> int:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__)
        return 2
    _ensure_environment()
    if argv[0] == "test":
        return _run("python", "-m", "pytest", *argv[1:])
    options = [a for a in argv[1:] if a != "--demo"]
    if "--demo" in argv:
        status = _run("receivables", "migrate") or _run("receivables", "demo")
        if status:
            return status
    return _run("receivables", "serve", "--migrate", *options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
