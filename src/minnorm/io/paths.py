"""Paths the user gives: ``~`` expanded, output folders checked before any work."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["user_path", "check_output_dir"]


def user_path(path) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded (an unknown user is an error)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory"
        head = Path(path).parts[0]
        raise FileNotFoundError(f"{path}: there is no user {head[1:]!r} on this machine for "
                                f"{head!r} to stand for: write the folder out in full") from None


def check_output_dir(path) -> Path:
    """The folder that will hold ``path`` must exist and be writable; returns it."""
    folder = user_path(path).absolute().parent
    if not folder.exists():
        raise FileNotFoundError(f"the output folder {folder} does not exist: create it "
                                f"first (mkdir -p {folder})")
    if not folder.is_dir():
        raise NotADirectoryError(f"the output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"the output folder {folder} is not writable: choose "
                              "another --out or fix its permissions")
    return folder
