"""Files: the `ensemble.npz` interchange format, training checkpoints, and run folders (train, resume,
evaluate, fixed-point stage), and Keras models in (`load_keras`).
"""

from ._eval import evaluate_run as evaluate_run
from ._keras import load_keras as load_keras
from ._keras import read_keras as read_keras
from ._metrics import read_losses as read_losses
from ._outputs import check_output_file as check_output_file
from ._outputs import check_output_folder as check_output_folder
from ._outputs import clean_temporaries as clean_temporaries
from ._run import load_run_ensemble as load_run_ensemble
from ._run import task_for_ensemble as task_for_ensemble
from ._run import train_run as train_run
from ._run_config import RunConfig as RunConfig
from ._run_config import read_config as read_config
from ._serialisation import fingerprint as fingerprint
from ._serialisation import load_checkpoint as load_checkpoint
from ._serialisation import load_npz as load_npz
from ._serialisation import save_checkpoint as save_checkpoint
from ._serialisation import save_npz as save_npz
