"""Files written whole or not at all: atomic writes, JSON, and checked `.npz` reading.

Every layer that writes a file uses these, so nothing on disk is ever half written.
"""

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file next to `path`; on success rename it onto `path` (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def read_npz(path: Path, required: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file (no pickles), checking that `required` names are present.

    Raises `FileNotFoundError`, or `ValueError` naming the file and the problem.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e}).") from None
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"{path}: missing array(s) {', '.join(missing)}; {what} needs {', '.join(required)}.")
    return data
