import gc
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Strict JAX: a silent broadcast between arrays of different rank is an error. (Strict dtype promotion
# is not set: optax's own Adam bias correction, `b ** count` with an int32 count, fails under it.)
jax.config.update("jax_numpy_rank_promotion", "raise")

# Two CPU devices, so that the member-axis sharding is exercised (an ensemble with an even number of
# members is split over them; see test_sharding.py).
jax.config.update("jax_num_cpu_devices", 2)

# Many tests build trainers with the same static configuration; a per-session persistent compilation
# cache (keyed on the lowered program, not on the Python function) compiles each one only once.
_CACHE_DIR = tempfile.mkdtemp(prefix="ctrnn_jax_test_cache_")
jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
# The command lines the tests start as subprocesses use it too (ctrnn_jax/_cli/_cache.py), not ~/.cache.
os.environ["CTRNN_JAX_CACHE_DIR"] = _CACHE_DIR


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module: drop JAX's in-memory caches of compiled programs and traces. The suite compiles
    thousands of programs in one process; kept all at once they grow its memory for nothing (a later module
    that needs one again reads it back from the persistent cache above)."""
    yield
    jax.clear_caches()
    gc.collect()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def getkey():
    """A function returning a fresh key at each call (the same sequence in every test)."""
    base = jax.random.key(5678)
    count = iter(range(1 << 30))
    return lambda: jax.random.fold_in(base, next(count))


def _tree_allclose(x, y, *, rtol=1e-5, atol=1e-8, exact=False):
    """Same tree structure, and leaf by leaf equal shapes, dtypes and values (to tolerance)."""
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(y):
        return False
    for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y)):
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if exact:
            if not np.array_equal(a, b, equal_nan=True):
                return False
        elif not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


@pytest.fixture
def tree_allclose():
    """`tree_allclose(x, y, *, rtol, atol, exact)`: pytrees equal leaf by leaf (to tolerance)."""
    return _tree_allclose
