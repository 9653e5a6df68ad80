"""The command line's persistent compilation cache: `use_compile_cache`.

XLA compiles every jitted program when a process first runs it; on a 2-core CPU the main job spends about
15 s of its wall time compiling (the training chunk, the task's samplers, the fixed-point search, the
analysis): 189-190 s with an empty cache, 175-176 s with a warm one, interleaved (benchmarks/RESULTS.md, #21). With
JAX's persistent cache the second and later runs of a command read those programs from disk
instead. Done by the command line (an application), never on library import.

Where: `$CTRNN_JAX_CACHE_DIR`, else `$XDG_CACHE_HOME/ctrnn_jax/xla`, else `~/.cache/ctrnn_jax/xla`.
Off with `CTRNN_JAX_CACHE_DIR=none` (or empty). A cache the user set for JAX itself
(`JAX_COMPILATION_CACHE_DIR`, or `jax_compilation_cache_dir` already configured) is left as it is. The
cache is trusted code: it lives in the user's own cache folder, never in a shared one. A main job adds about
2 MB; the folder is safe to delete at any time. (No size bound: JAX's needs the `filelock` package.)
"""

import os
import warnings
from pathlib import Path

ENV = "CTRNN_JAX_CACHE_DIR"
OFF = ("", "none", "off", "0")
# Every program is written, the small ones too: the fixed-point stage and the analysis compile about a
# hundred programs of 0.1 s each (eager operations, new batch shapes); reading one back takes milliseconds.
# Measured on the main job's fixed-point stage: 46 s cold, 36 s warm (43 s warm with only the programs of
# 0.2 s or more cached).
MIN_COMPILE_SECONDS = 0.0


def cache_dir(environ=os.environ) -> Path | None:
    """The folder the command line caches compiled programs in, or None when caching is off (or left to
    the user's own JAX setting)."""
    if "JAX_COMPILATION_CACHE_DIR" in environ:
        return None
    if ENV in environ:
        value = environ[ENV].strip()
        return None if value.lower() in OFF else Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ctrnn_jax" / "xla"


def use_compile_cache(environ=os.environ) -> Path | None:
    """Turn on JAX's persistent compilation cache in `cache_dir()`; returns the folder, or None when it
    is off, already configured, or cannot be made (a read-only home: the run goes on without it)."""
    folder = cache_dir(environ)
    if folder is None:
        return None
    import jax

    # configured already (a script, the test suite); jax's Config declares no attribute per option:
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    # A cache entry that cannot be written (a full disk) or read back (one truncated by a full disk) costs
    # a compile, nothing else: no warning for it (the command's own output stays one line per error).
    warnings.filterwarnings("ignore", message="Error (writing|reading) persistent compilation cache entry")
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder
