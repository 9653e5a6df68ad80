"""Ensembles of networks and their training: ensemble construction, biological constraints, the
pure training step and the vmapped trainer around it, sharding over devices, progress meters, and evaluation on
test sets.
"""

from ._constraints import ConstraintConfig as ConstraintConfig
from ._constraints import Constraints as Constraints
from ._constraints import apply_constraints as apply_constraints
from ._constraints import constraint_violations as constraint_violations
from ._constraints import constraints_from_arrays as constraints_from_arrays
from ._constraints import make_constraints as make_constraints
from ._distributed import DistributedError as DistributedError
from ._distributed import init_distributed as init_distributed
from ._distributed import is_distributed as is_distributed
from ._distributed import is_main_process as is_main_process
from ._distributed import to_host as to_host
from ._ensemble import EnsembleConfig as EnsembleConfig
from ._ensemble import ensemble_constraints as ensemble_constraints
from ._ensemble import ensemble_size as ensemble_size
from ._ensemble import get_member as get_member
from ._ensemble import make_ensemble as make_ensemble
from ._ensemble import stack_members as stack_members
from ._evaluate import ensemble_outputs as ensemble_outputs
from ._evaluate import ensemble_states as ensemble_states
from ._evaluate import evaluate as evaluate
from ._progress import NoProgress as NoProgress
from ._progress import TextProgress as TextProgress
from ._progress import TqdmProgress as TqdmProgress
from ._sharding import member_mesh as member_mesh
from ._sharding import shard_members as shard_members
from ._tensorboard import TensorBoardProgress as TensorBoardProgress
from ._train import EnsembleTrainer as EnsembleTrainer
from ._train import Hyper as Hyper
from ._train import TrainConfig as TrainConfig
from ._train import TrainState as TrainState
from ._train import TrainStep as TrainStep
from ._train import make_train_step as make_train_step
from ._train import optimizer as optimizer
from ._train import restart_key as restart_key
from ._train import select_members as select_members
from ._train import state_record as state_record
from ._train import step_key as step_key
from ._train import trainable_filter as trainable_filter
