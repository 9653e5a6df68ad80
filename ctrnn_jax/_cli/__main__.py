"""`python -m ctrnn_jax._cli ...`, the same as `ctrnn-jax ...`."""

import sys

from . import main

sys.exit(main())
