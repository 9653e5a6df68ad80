"""Outputs that never clobber inputs, never mix with another network's results, and are checked before work.

Every command that writes checks its output paths here first, before any training or search:

- a file path (`check_output_file`) must not be a directory, lie under a file, sit in a folder that cannot
  be written, or be one of the command's inputs; a file already there is replaced only when it is of the
  kind being written (fixed points over fixed points of the same network, ...), else only with
  `overwrite=True`;
- a folder (`check_output_folder`) is checked for what it holds: a run folder belongs to its network, an
  analysis folder (`analysis.json`) to the network it analysed, a comparison folder (`comparison.json`) to
  the networks it compared. Writing another network's results there is refused (another run's folder:
  always; an analysis or comparison folder, or loose result files: unless `overwrite=True`, which then
  removes the files the earlier result listed, so that two results never mix).

Derived files record the fingerprint (`fingerprint`) of the network they were computed from: fixed points
(`network` in the `.npz`), `analysis.json` and `cube.json` (`network`), `comparison.json` (`networks`).
`stale_results` lists a run folder's derived files that belong to other weights (`train --resume` removes
them when it writes the new `ensemble.npz`).
"""

import json
import os
import re
import zipfile
from pathlib import Path

from .._files import clean_temporaries

# What `train` writes into a run folder, and what the analysis stages derive from its `ensemble.npz`.
CONFIG, CHECKPOINT, METRICS = "config.json", "checkpoint.eqx", "metrics.csv"
EVAL, ENSEMBLE = "eval.json", "ensemble.npz"
SUMMARY = "summary.csv"
RUN_FILES = (CONFIG, CHECKPOINT, METRICS, SUMMARY, EVAL, ENSEMBLE)
ANALYSIS, REPORT, COMPARISON, CUBE, FIGURES = "analysis.json", "report.md", "comparison.json", "cube.json", "figures"


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_file(path: str | os.PathLike, option: str = "`path`") -> Path:
    """`path` as a `Path` if a file can be written there: not a directory, not under a file, in a folder
    that exists or can be made and is writable. Raises `IsADirectoryError`, `NotADirectoryError` or
    `PermissionError` naming `option` and the path."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a directory; give a file name (e.g. {path / 'NAME'}).")
    _check_parent(path, option)
    return path


def check_writable_folder(path: str | os.PathLike, option: str = "`out_dir`") -> Path:
    """`path` as a `Path` if it is a folder, or can be made as one, that can be written. Raises
    `NotADirectoryError` or `PermissionError` naming `option`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path}: is a file, not a folder.")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{option} {path}: the folder is not writable.")
        return path
    _check_parent(path, option)
    return path


def _check_parent(path: Path, option: str) -> None:
    existing = _nearest_existing(path.parent if path.parent != path else path)
    if not existing.is_dir():
        raise NotADirectoryError(f"{option} {path}: cannot be created, {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {path}: cannot be written, the folder {existing} is not writable.")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def file_kind(path: str | os.PathLike) -> str | None:
    """What a file written by ctrnn_jax holds, from its content (`"ensemble"`, `"fixed points"`,
    `"evaluation"`, `"run configuration"`, `"analysis"`, `"comparison"`, `"cube analysis"`,
    `"fixed-point configuration"`, `"checkpoint"`, `"metrics"`), or None for anything else."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.name == CHECKPOINT:
        return "checkpoint"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
        except (OSError, zipfile.BadZipFile):
            return None
        if "W_rec.npy" in names:
            return "ensemble"
        if {"points.npy", "q.npy"} <= names:
            return "fixed points"
        return None
    try:
        head = path.read_bytes()[:64]
    except OSError:
        return None
    if head.startswith(b"step,member,loss"):
        return "metrics"
    if path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    for kind, keys in (
        ("run configuration", {"config", "environment"}),
        ("analysis", {"source", "best_member"}),
        ("comparison", {"members", "svcca"}),
        ("cube analysis", {"per_member", "summary"}),
        ("evaluation", {"n_success", "success"}),
        ("fixed-point configuration", {"n_candidates"}),
    ):
        if keys <= set(data):
            return kind
    return None


def recorded_network(path: str | os.PathLike) -> str | None:
    """The network fingerprint a derived file records (`network` in a fixed-points `.npz`, `analysis.json`
    or `cube.json`), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    if zipfile.is_zipfile(path):
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as z:
                return str(z["network"]) if "network" in z.files else None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("network") if isinstance(data, dict) else None


def _refuse(option: str, path: Path, what: str) -> FileExistsError:
    return FileExistsError(
        f"{option} {path}: {what}; choose another, or pass --overwrite (`overwrite=True`) to replace it."
    )


def check_output_file(
    path: str | os.PathLike,
    kind: str,
    *,
    option: str = "`path`",
    sources=(),
    network: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Check, before any work, that a `kind` file (see `file_kind`) may be written at `path`.

    **Arguments:**

    - `path`: the output file; `option`: its name in messages (`--out`, `--json`, ...).
    - `sources`: the input files or run folders of the command: never written over, whatever `overwrite`.
    - `network`: the fingerprint of the network the output belongs to, if it records one.
    - `overwrite`: replace a file of another kind, or another network's file of this kind.

    Raises `ValueError` (an input), `FileExistsError` (a file that is not to be replaced) or the errors of
    `check_writable_file`.
    """
    path = check_writable_file(path, option)
    for source in map(Path, sources):
        inputs = [source / ENSEMBLE, source / CONFIG, source / CHECKPOINT] if source.is_dir() else [source]
        if any(_same(path, p) for p in inputs):
            raise ValueError(
                f"{option} {path}: is an input of this command ({source}); writing there would "
                "destroy it. Choose another file."
            )
    run = path.parent
    if is_run_folder(run) and path.name in RUN_FILES:
        raise ValueError(
            f"{option} {path}: is the run's own {path.name} (the record of the run in {run}: "
            f"{_RUN_RECORDS[path.name]}); no command's output replaces it, --overwrite or not. Choose "
            "another file."
        )
    if (
        not overwrite
        and network is not None
        and kind != "ensemble"
        and (run / CONFIG).is_file()
        and ((run / ENSEMBLE).is_file() or (run / CHECKPOINT).is_file())
        and _run_network(run) != network
    ):
        raise _refuse(option, path, f"is in the run folder of another network ({run})")
    if path.exists() and not overwrite:
        existing = file_kind(path)
        if existing != kind:
            held = f"{'an' if existing[0] in 'aeiou' else 'a'} {existing}" if existing else f"no {kind} file"
            raise _refuse(option, path, f"exists and holds {held}")
        if network is not None and recorded_network(path) not in (None, network):
            raise _refuse(option, path, f"holds the {kind} of another network")
    return path


_RUN_RECORDS = {
    CONFIG: "its settings",
    CHECKPOINT: "its training state",
    METRICS: "its losses",
    SUMMARY: "its progress",
    EVAL: "its test metrics and training record: frozen members, restarts, the criterion step",
    ENSEMBLE: "its trained weights",
}


def _run_network(folder: Path) -> str | None:
    """The fingerprint of the `ensemble.npz` in `folder`, or None when there is none or it is unreadable."""
    from ._serialisation import fingerprint, load_npz

    try:
        return fingerprint(load_npz(folder / ENSEMBLE))
    except (ValueError, OSError):
        return None


def is_run_folder(folder: str | os.PathLike) -> bool:
    """A folder that `train` made: it holds `config.json` and (once trained) `checkpoint.eqx` or `ensemble.npz`."""
    folder = Path(folder)
    return (folder / CONFIG).is_file() and ((folder / CHECKPOINT).is_file() or (folder / ENSEMBLE).is_file())


# What a manifest (`files` of analysis.json or comparison.json) may name: the files `Analysis.write` and
# `Comparison.write` write, relative to the manifest's folder.
_MANIFEST_ENTRY = re.compile(
    r"figures/[A-Za-z0-9_][A-Za-z0-9_.-]*\.(png|pdf)|report\.(md|html)|cube\.json"
    r"|fixed_points(_\d+)?\.npz|fixed_points_config\.json"
)
_MANIFEST_KINDS = (
    "figures/NAME.png|pdf, report.md, report.html, cube.json, fixed_points[_I].npz, fixed_points_config.json"
)


def _entry_problem(folder: Path, entry) -> str | None:
    """Why `entry` of a manifest in `folder` is not a file we wrote there (None: it may be)."""
    if not isinstance(entry, str) or not entry:
        return "is not a file name"
    if entry.startswith(("/", "\\")) or Path(entry).is_absolute() or re.match(r"^[A-Za-z]:", entry):
        return "is an absolute path"
    if ".." in re.split(r"[/\\]", entry):
        return "goes up out of the folder (`..`)"
    target = folder / entry
    try:
        inside = target.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a link loop
        inside = False
    if not inside:
        return f"leads out of the folder through a symbolic link (to {target.resolve(strict=False)})"
    if not _MANIFEST_ENTRY.fullmatch(entry):
        return f"is not a file ctrnn_jax writes there ({_MANIFEST_KINDS})"
    return None


def listed_files(folder: str | os.PathLike, manifest: str) -> list[Path]:
    """The files that `manifest` (`analysis.json`, `comparison.json`) in `folder` lists as written with it.

    A manifest names files relative to its folder, of the kinds `Analysis.write` and `Comparison.write` write.
    An entry that is absolute, contains `..`, leads out of the folder through a symbolic link, or names
    another kind of file is refused: `ValueError` naming the folder, the manifest and the entry (nothing is
    removed). A missing or unreadable manifest lists nothing."""
    folder = Path(folder)
    try:
        data = json.loads((folder / manifest).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    files = data.get("files", []) if isinstance(data, dict) else []
    entries = files if isinstance(files, list) else [files]
    for entry in entries:
        problem = _entry_problem(folder, entry)
        if problem is not None:
            raise ValueError(
                f"{folder / manifest}: the entry {entry!r} of its `files` {problem}; a manifest lists "
                f"only files ctrnn_jax wrote inside {folder}, so nothing was removed. Remove the entry "
                f"(or {manifest}) by hand if the folder is yours, or use another folder."
            )
    return [folder / entry for entry in entries]


_listed = listed_files


def _check_figures_inside(path: Path, option: str) -> None:
    """`path/figures` (where figures are written and removed) must be a folder of `path`, not a link out."""
    figures = path / FIGURES
    if figures.is_symlink():
        raise ValueError(
            f"{option} {path}: its {FIGURES} is a symbolic link (to {figures.resolve(strict=False)}); "
            "results are written only inside their folder. Remove the link, or use another folder."
        )


def check_output_folder(
    path: str | os.PathLike, purpose: str, owner: str, *, option: str = "`out_dir`", overwrite: bool = False
) -> Path:
    """Check, before any work, that the results of `purpose` (`"analysis"` of the network `owner`, a
    fingerprint; or `"comparison"` of the networks `owner`, a fingerprint of their list) may be written to the
    folder `path`; with `overwrite`, remove the files an earlier result of another owner listed there.

    Accepted: a new or empty folder; the run folder of the analysed network itself; a folder that holds
    the same owner's earlier result (written again). Refused: another network's run folder (always; a
    comparison never goes into a run folder); a folder of another owner's result, or with result files of
    ours that no manifest claims, unless `overwrite`.
    """
    if purpose not in ("analysis", "comparison"):
        raise ValueError(f"`purpose` must be 'analysis' or 'comparison', got {purpose!r}.")
    path = check_writable_folder(path, option)
    if not path.is_dir():
        return path
    clean_temporaries(path)
    if (path / "figures").is_dir():
        clean_temporaries(path / "figures")
    for name in (ANALYSIS, COMPARISON):  # a manifest that names files outside: refused before anything
        listed_files(path, name)
    _check_figures_inside(path, option)
    run = (path / CONFIG).is_file() or (path / ENSEMBLE).is_file() or (path / CHECKPOINT).is_file()
    if run:
        if purpose == "comparison":
            raise ValueError(f"{option} {path}: is a run folder; a comparison goes into a folder of its own.")
        if _run_network(path) != owner:
            raise ValueError(
                f"{option} {path}: is the run folder of another network; its results stay its own. "
                "Choose another folder."
            )
    manifest = ANALYSIS if purpose == "analysis" else COMPARISON
    other = COMPARISON if purpose == "analysis" else ANALYSIS
    if (path / other).is_file():
        if not overwrite:
            raise _refuse(option, path, f"holds {'a comparison' if other == COMPARISON else 'an analysis'} ({other})")
        _remove([*_listed(path, other), path / other])
    if (path / manifest).is_file():
        data = _read_json(path / manifest)
        recorded = data.get("network" if purpose == "analysis" else "owner") if isinstance(data, dict) else None
        if recorded != owner:
            if not overwrite and not run:  # (the network's own run folder: its earlier analysis is replaced)
                raise _refuse(
                    option,
                    path,
                    f"holds the {purpose} of " + ("another network" if purpose == "analysis" else "other networks"),
                )
            _remove(_listed(path, manifest))
    elif not run:
        loose = [
            p for p in (path / REPORT, path / ANALYSIS, path / COMPARISON, path / CUBE, path / FIGURES) if p.exists()
        ] + sorted(path.glob("fixed_points*.npz"))
        if loose and not overwrite:
            raise _refuse(
                option, path, f"already holds result files ({', '.join(p.name for p in loose)}) of an unknown network"
            )
    return path


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ours(p: Path) -> bool:
    """Whether `p` is a file of the kind we write under its name (never a link): deletion is limited to those."""
    if p.is_symlink() or not p.is_file():
        return False
    name = p.name
    try:
        if p.suffix in (".png", ".pdf"):
            magic = b"\x89PNG" if p.suffix == ".png" else b"%PDF"
            return p.parent.name == FIGURES and p.read_bytes()[:8].startswith(magic)
        if name in (REPORT, "report.html"):
            p.read_text()  # text of ours: a report (no fingerprint to check)
            return True
        if name == SUMMARY:
            return p.read_text()[:16].startswith("step,median_loss")
    except (OSError, UnicodeDecodeError):
        return False
    expected = {
        CONFIG: "run configuration",
        CHECKPOINT: "checkpoint",
        METRICS: "metrics",
        EVAL: "evaluation",
        ENSEMBLE: "ensemble",
        ANALYSIS: "analysis",
        COMPARISON: "comparison",
        CUBE: "cube analysis",
    }
    if name in expected:
        return file_kind(p) == expected[name]
    if re.fullmatch(r"fixed_points.*\.npz", name):
        return file_kind(p) == "fixed points"
    if re.fullmatch(r"fixed_points.*_config\.json", name):
        return file_kind(p) == "fixed-point configuration"
    return False


def _remove(paths) -> list[Path]:
    """Remove the files of `paths` that are ours (`_ours`: of the kind their name says, not links); a `figures`
    folder: the figures in it that are ours, and the folder once empty. Anything else is left as it is."""
    removed = []
    for p in map(Path, paths):
        if p.is_dir() and not p.is_symlink() and p.name == FIGURES:
            inner = [f for f in sorted(p.iterdir()) if _ours(f)]
            for f in inner:
                f.unlink()
            if inner:
                removed.append(p)
        elif _ours(p):
            p.unlink()
            removed.append(p)
        else:
            continue
        figures = p if p.name == FIGURES else p.parent if p.parent.name == FIGURES else None
        if figures is not None and figures.is_dir() and not figures.is_symlink() and not any(figures.iterdir()):
            figures.rmdir()  # emptied: nothing of ours is left there
    return removed


def describe(paths) -> str:
    """`fixed_points.npz, analysis.json, report.md and 26 figure files`: removed files, briefly."""
    paths = [Path(p) for p in paths]
    figures = [p for p in paths if p.parent.name == FIGURES]
    names = [p.name for p in paths if p not in figures]
    return ", ".join(names + ([f"{len(figures)} figure files"] if figures else []))


def derived_files(folder: str | os.PathLike) -> list[Path]:
    """The files of a run folder computed from its `ensemble.npz`: fixed points (and their configs), the cube
    analysis, the analysis, the report and the figures `analysis.json` lists."""
    folder = Path(folder)
    found = [
        *sorted(folder.glob("fixed_points*.npz")),
        *sorted(folder.glob("fixed_points*_config.json")),
        *_listed(folder, ANALYSIS),
    ]
    found += [folder / name for name in (CUBE, ANALYSIS, REPORT)]
    return [p for p in dict.fromkeys(found) if p.is_file()]


def stale_results(folder: str | os.PathLike, network: str) -> list[Path]:
    """The derived files of `folder` (`derived_files`) that belong to another network than `network`: those
    recording another fingerprint, and those recording none (written before fingerprints)."""
    derived = derived_files(folder)
    fingerprinted = [p for p in derived if p.suffix == ".npz" or p.name in (ANALYSIS, CUBE)]
    if any(recorded_network(p) != network for p in fingerprinted):
        return derived  # one result of other weights: the rest (figures, report, configs) goes with it
    return []


def remove_results(paths) -> list[Path]:
    """Remove derived files (stale ones), those that are ours only (of the kind their name says, not
    links); returns what was removed."""
    return _remove(paths)


__all__ = [
    "check_output_file",
    "check_output_folder",
    "clean_temporaries",
    "check_writable_file",
    "check_writable_folder",
    "derived_files",
    "describe",
    "file_kind",
    "is_run_folder",
    "listed_files",
    "recorded_network",
    "remove_results",
    "stale_results",
]
