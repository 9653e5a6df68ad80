"""Networks that act on one trial (or a batch): the CTRNN and the gated cells (GRU, LSTM, UGRNN), their
activations, initializers, and the Euler time loop with its backward passes. Imports nothing above it.
"""

from ._activations import ACTIVATIONS as ACTIVATIONS
from ._base import AbstractRNN as AbstractRNN
from ._gated import GRU as GRU
from ._gated import LSTM as LSTM
from ._gated import UGRNN as UGRNN
from ._model import CTRNN as CTRNN
from ._scan import euler_readout_scan as euler_readout_scan
from ._scan import euler_scan as euler_scan
