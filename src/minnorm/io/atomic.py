"""The one atomic writer: every file minnorm writes appears complete, or not at all.

Every file minnorm writes goes first into a private temporary folder next to
its destination and is moved into place (``os.replace``, atomic on one file
system) only once complete. An interrupted run — Ctrl-C, a crash, a full
disk — therefore leaves each destination either as it was or complete, and
an existing file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .paths import check_output_dir, user_path

__all__ = ["AtomicOutputs", "check_new_outputs", "write_text_output"]


class AtomicOutputs:
    """Write several files so that each appears complete, or not at all.

    Parameters
    ----------
    paths : list of path-like
        The destinations, all in one folder.
    overwrite : bool
        Allow replacing existing destinations.

    Use as a context manager: write each destination to
    ``out.temporary(path)``; on a clean exit the temporary files are moved
    into place, on an exception (KeyboardInterrupt included) they are
    deleted and the destinations are untouched.

    Raises
    ------
    FileExistsError
        A destination exists and ``overwrite`` is False (checked at once).
    FileNotFoundError, NotADirectoryError, PermissionError
        The folder does not exist or is not writable (checked at once).
    """

    def __init__(self, paths, *, overwrite: bool = False):
        self.paths = [user_path(p).absolute() for p in paths]
        folders = {p.parent for p in self.paths}
        if len(folders) > 1:
            raise ValueError(f"outputs must share one folder, got {sorted(map(str, folders))}")
        if len({p.name for p in self.paths}) != len(self.paths):
            raise ValueError("two outputs have the same file name")
        self.overwrite = overwrite
        self.folder = check_output_dir(self.paths[0]) if self.paths else None
        self._check_existing()
        self._tmp = None

    def _check_existing(self):
        """Refuse folders where a file goes, and existing files unless ``overwrite``."""
        for path in self.paths:
            if path.is_dir():
                raise IsADirectoryError(f"{path} is a folder, and a file is to be written "
                                        "there: move it away or choose another --out")
        if self.overwrite:
            return
        existing = [p for p in self.paths if os.path.lexists(p)]  # broken links too
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            link = " (a broken symbolic link)" if not existing[0].exists() else ""
            raise FileExistsError(f"{existing[0]}{link} exists{more}: pass --overwrite "
                                  "(overwrite=True) to replace it, or choose another --out")

    def __enter__(self) -> "AtomicOutputs":
        try:
            self._tmp = Path(tempfile.mkdtemp(prefix=".minnorm-tmp-", dir=self.folder))
        except PermissionError:
            raise PermissionError(f"the output folder {self.folder} is not writable: "
                                  "choose another --out or fix its permissions") from None
        return self

    def temporary(self, path) -> Path:
        """Where to write the destination ``path`` for now."""
        path = user_path(path).absolute()
        if path not in self.paths:
            raise ValueError(f"{path} is not one of the planned outputs")
        return self._tmp / path.name

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False

    def _commit(self):
        """Move every output into place, or none: a failed move undoes the earlier ones."""
        missing = [p.name for p in self.paths if not (self._tmp / p.name).exists()]
        if missing:
            raise RuntimeError(f"internal error: {missing} were not written")
        self._check_existing()  # one may have appeared meanwhile
        done = []  # (destination, its previous file moved aside, or None)
        try:
            for k, path in enumerate(self.paths):
                old = None
                if os.path.lexists(path):
                    old = self._tmp / f".previous-{k}"
                    os.replace(path, old)
                done.append((path, old))
                os.replace(self._tmp / path.name, path)
        except BaseException:
            for path, old in reversed(done):
                with contextlib.suppress(OSError):
                    if old is not None:
                        os.replace(old, path)
                    elif os.path.lexists(path):
                        os.unlink(path)
            raise


def check_new_outputs(folder, names, *, overwrite: bool = False) -> list[Path]:
    """The paths of files ``names`` in ``folder``, checked before any work is done.

    The folder may not exist yet (it is made when the outputs are written,
    with :func:`write_outputs`); it must not be a file, and the nearest
    existing folder above it must be writable. Existing outputs, folders
    and broken links where a file goes are refused as :class:`AtomicOutputs` does.
    """
    folder = user_path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file: give a folder for --out")
    paths = [folder / name for name in names]
    if folder.is_dir():
        AtomicOutputs(paths, overwrite=overwrite)  # checks only: nothing is created
    else:
        base = next(p for p in folder.parents if p.exists())
        if not os.access(base, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot create {folder}: {base} is not writable; choose "
                                  "another --out or fix its permissions")
    return paths


def write_text_output(outputs: AtomicOutputs, path, text: str) -> Path:
    """Write ``text`` (UTF-8) as the planned output ``path`` of ``outputs``."""
    outputs.temporary(path).write_text(text, encoding="utf-8")
    return Path(path)
