"""ctrnn_jax: ensembles of continuous-time RNNs in JAX, trained on cognitive tasks and analysed."""

from importlib.metadata import PackageNotFoundError, version

from ._activations import ACTIVATIONS as ACTIVATIONS
from ._analysis import compare_realizations as compare_realizations
from ._analysis import linear_cka as linear_cka
from ._analysis import pairwise_cka as pairwise_cka
from ._analysis import pairwise_procrustes as pairwise_procrustes
from ._analysis import robustness_sweep as robustness_sweep
from ._analysis import size_sweep_summary as size_sweep_summary
from ._analysis import success_summary as success_summary
from ._cube import analyze_fixed_points as analyze_fixed_points
from ._cube import cube_analysis as cube_analysis
from ._cube import ensemble_summary as ensemble_summary
from ._cube import format_cube_table as format_cube_table
from ._cube import procrustes_disparity as procrustes_disparity
from ._constraints import ConstraintConfig as ConstraintConfig
from ._constraints import Constraints as Constraints
from ._constraints import apply_constraints as apply_constraints
from ._constraints import constraint_violations as constraint_violations
from ._constraints import constraints_from_arrays as constraints_from_arrays
from ._constraints import make_constraints as make_constraints
from ._decision import ContextDMConfig as ContextDMConfig
from ._decision import PerceptualDMConfig as PerceptualDMConfig
from ._ensemble import EnsembleConfig as EnsembleConfig
from ._ensemble import ensemble_constraints as ensemble_constraints
from ._ensemble import ensemble_size as ensemble_size
from ._ensemble import get_member as get_member
from ._ensemble import make_ensemble as make_ensemble
from ._ensemble import stack_members as stack_members
from ._evaluate import ensemble_outputs as ensemble_outputs
from ._evaluate import ensemble_states as ensemble_states
from ._evaluate import evaluate as evaluate
from ._fixed_points import FixedPoints as FixedPoints
from ._gated import GRU as GRU
from ._gated import LSTM as LSTM
from ._fixed_points import find_fixed_points as find_fixed_points
from ._fixed_points import initial_states_from_trajectories as initial_states_from_trajectories
from ._flipflop import FlipFlopConfig as FlipFlopConfig
from ._flipflop import flipflop_dataset as flipflop_dataset
from ._flipflop import flipflop_test_set as flipflop_test_set
from ._flipflop import sample_flipflop as sample_flipflop
from ._memory import DelayedMatchConfig as DelayedMatchConfig
from ._memory import ParametricWMConfig as ParametricWMConfig
from ._model import CTRNN as CTRNN
from ._progress import NoProgress as NoProgress
from ._progress import TextProgress as TextProgress
from ._progress import TqdmProgress as TqdmProgress
from ._report import analyze_run as analyze_run
from ._scan import euler_readout_scan as euler_readout_scan
from ._scan import euler_scan as euler_scan
from ._serialisation import load_checkpoint as load_checkpoint
from ._serialisation import load_npz as load_npz
from ._serialisation import save_checkpoint as save_checkpoint
from ._serialisation import save_npz as save_npz
from ._task import Task as Task
from ._task import decision_score as decision_score
from ._task import masked_mse as masked_mse
from ._task_report import task_fixed_points as task_fixed_points
from ._tasks import TASKS as TASKS
from ._tasks import make_task as make_task
from ._tasks import register_task as register_task
from ._train import EnsembleTrainer as EnsembleTrainer
from ._train import TrainConfig as TrainConfig
from ._train import TrainState as TrainState
from ._train import select_members as select_members

try:
    __version__ = version("ctrnn_jax")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"
