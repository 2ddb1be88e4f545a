"""The user's cache folder, and files in it that readers see whole or not at all.

Four things are kept there, each in its own place and each an optimisation only: the
fitted meta-models (:mod:`llp.meta._cache`), the shipped knowledge kept parsed
(:mod:`llp.knowledge._parsed`, in ``corpora``), the feature importances of studies'
reports (:mod:`llp.report._meta`, in ``importances``) and the trained weights a study
keeps for its report's landscape slices (:mod:`llp.training._weights`, in ``weights``).
This module imports nothing heavy (no scikit-learn, no PyTorch), so that a command which
only reads a cached answer does not pay for the libraries that computed it.

Where: ``$LLP_CACHE_DIR`` if set (set it empty to turn the cache off), else
``$XDG_CACHE_HOME/llp/meta-models`` or ``~/.cache/llp/meta-models``. When a file cannot
be written (a read-only home, a full disk) nothing fails; a file that cannot be read is
ignored by its reader and written again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np

#: Environment variable naming the cache folder ("" turns the cache off).
CACHE_ENV = "LLP_CACHE_DIR"

#: What reading a damaged or foreign cache file may raise (it is then ignored).
UNREADABLE: tuple[type[Exception], ...] = (
    OSError,
    ValueError,  # json.JSONDecodeError and UnicodeDecodeError too
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    zipfile.BadZipFile,
)


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when the cache is turned off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llp" / "meta-models"


def write_atomic(path: Path, write: Callable[[IO[bytes]], object], *, keep: int) -> Path | None:
    """Write the file ``path`` with ``write`` so that readers see a whole file or none,
    then keep the ``keep`` most recently used files of its folder with its suffix.
    Returns ``path``, or ``None`` when it cannot be written (never raises for that)."""
    folder = path.parent
    temporary: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
            temporary = handle.name
            write(handle)
        os.replace(temporary, path)
        evict(folder, keep, path.suffix)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return None
    return path


def write_arrays(
    path: Path, arrays: Mapping[str, np.ndarray], *, compressed: bool, keep: int
) -> Path | None:
    """:func:`write_atomic` for the ``.npz`` file of ``arrays``."""
    save = np.savez_compressed if compressed else np.savez
    return write_atomic(path, lambda handle: save(handle, **arrays), keep=keep)  # type: ignore[arg-type]


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, read without unpickling anything."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def touch(path: Path) -> None:
    """Mark ``path`` as just used (evicted last)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def evict(folder: Path, keep: int, suffix: str) -> None:
    """Remove all but the ``keep`` most recently used files of ``folder`` ending in
    ``suffix``."""
    entries: list[tuple[float, Path]] = []
    for entry in folder.glob(f"*{suffix}"):
        with contextlib.suppress(OSError):  # another process removed it first
            entries.append((entry.stat().st_mtime, entry))
    entries.sort(key=lambda item: item[0], reverse=True)
    for _, old in entries[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()


__all__ = [
    "CACHE_ENV",
    "UNREADABLE",
    "cache_dir",
    "evict",
    "read_arrays",
    "touch",
    "write_arrays",
    "write_atomic",
]
