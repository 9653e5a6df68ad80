"""The command line's persistent compilation cache (`ctrnn_jax._cli._cache`)."""

import os
import subprocess
import sys
from pathlib import Path

from ctrnn_jax._cli._cache import cache_dir, use_compile_cache


def test_cache_folder_follows_the_environment(tmp_path):
    home = str(Path.home())
    assert cache_dir({}) == Path(home) / ".cache" / "ctrnn_jax" / "xla"
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "ctrnn_jax" / "xla"
    assert cache_dir({"CTRNN_JAX_CACHE_DIR": str(tmp_path / "c"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "c"
    for off in ("none", "NONE", "", "off", "0"):
        assert cache_dir({"CTRNN_JAX_CACHE_DIR": off}) is None
    # JAX's own setting wins: the command line leaves it alone
    assert cache_dir({"JAX_COMPILATION_CACHE_DIR": "/y", "CTRNN_JAX_CACHE_DIR": str(tmp_path)}) is None


def test_an_already_configured_cache_is_kept(tmp_path):
    import jax

    before = jax.config.jax_compilation_cache_dir  # the test suite's (conftest)
    assert before
    assert use_compile_cache({"CTRNN_JAX_CACHE_DIR": str(tmp_path / "c")}) is None
    assert jax.config.jax_compilation_cache_dir == before
    assert not (tmp_path / "c").exists()


_PROBE = """
import sys, jax, jax.numpy as jnp
from ctrnn_jax._cli._cache import use_compile_cache
folder = use_compile_cache()
print(folder, jax.config.jax_compilation_cache_dir)
"""


def _probe(env):
    base = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**base, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_a_fresh_process_gets_the_cache_or_runs_without_it(tmp_path):
    folder, configured = _probe({"CTRNN_JAX_CACHE_DIR": str(tmp_path / "xla")})
    assert folder == configured == str(tmp_path / "xla") and (tmp_path / "xla").is_dir()
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # the folder cannot be made under a file (as root too): no cache, no error
    assert _probe({"CTRNN_JAX_CACHE_DIR": str(blocker / "xla")}) == ["None", "None"]
