"""`python -m ctrnn_jax._cli ...`, the same as `ctrnn-jax ...`."""

import sys

from . import main

if __name__ == "__main__":  # importing the module (e.g. walking the package) runs nothing
    sys.exit(main())
