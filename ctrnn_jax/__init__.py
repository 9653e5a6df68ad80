"""ctrnn_jax: ensembles of continuous-time RNNs in JAX, trained on cognitive tasks and analysed.

Layers, bottom to top: `models` and `tasks`, then `training`, `dynamics`, `io`, `analysis`, and the CLI.
Every public name below is also reachable from its layer, e.g. `ctrnn_jax.tasks.FlipFlopConfig`.
"""

from importlib.metadata import PackageNotFoundError, version

from .analysis import Analysis as Analysis
from .analysis import Comparison as Comparison
from .analysis import analyze as analyze
from .analysis import analyze_run as analyze_run
from .analysis import compare_ensembles as compare_ensembles
from .analysis import compare_realizations as compare_realizations
from .analysis import dsa_distance as dsa_distance
from .analysis import linear_cka as linear_cka
from .analysis import pairwise_cka as pairwise_cka
from .analysis import pairwise_procrustes as pairwise_procrustes
from .analysis import procrustes_distance as procrustes_distance
from .analysis import robustness_sweep as robustness_sweep
from .analysis import save_figure as save_figure
from .analysis import size_sweep_summary as size_sweep_summary
from .analysis import success_summary as success_summary
from .analysis import svcca_distance as svcca_distance
from .analysis import task_fixed_points as task_fixed_points
from .dynamics import Continuation as Continuation
from .dynamics import FixedPointConfig as FixedPointConfig
from .dynamics import FixedPoints as FixedPoints
from .dynamics import Linearization as Linearization
from .dynamics import MemoryCheck as MemoryCheck
from .dynamics import PredictionError as PredictionError
from .dynamics import Selection as Selection
from .dynamics import Switching as Switching
from .dynamics import analyze_fixed_points as analyze_fixed_points
from .dynamics import complete_saddles as complete_saddles
from .dynamics import cube_analysis as cube_analysis
from .dynamics import ensemble_summary as ensemble_summary
from .dynamics import find_fixed_points as find_fixed_points
from .dynamics import fixed_point_stage as fixed_point_stage
from .dynamics import follow_fixed_points as follow_fixed_points
from .dynamics import format_cube_table as format_cube_table
from .dynamics import initial_states_from_trajectories as initial_states_from_trajectories
from .dynamics import linearize as linearize
from .dynamics import memory_check as memory_check
from .dynamics import prediction_error as prediction_error
from .dynamics import procrustes_disparity as procrustes_disparity
from .dynamics import pulse_switching as pulse_switching
from .dynamics import selection_analysis as selection_analysis
from .dynamics import topology_distance as topology_distance
from .dynamics import topology_graph as topology_graph
from .io import load_checkpoint as load_checkpoint
from .io import load_keras as load_keras
from .io import load_npz as load_npz
from .io import save_checkpoint as save_checkpoint
from .io import save_npz as save_npz
from .models import ACTIVATIONS as ACTIVATIONS
from .models import CTRNN as CTRNN
from .models import GRU as GRU
from .models import LSTM as LSTM
from .models import UGRNN as UGRNN
from .models import AbstractRNN as AbstractRNN
from .models import euler_readout_scan as euler_readout_scan
from .models import euler_scan as euler_scan
from .tasks import TASKS as TASKS
from .tasks import AbstractTask as AbstractTask
from .tasks import ContextDMConfig as ContextDMConfig
from .tasks import DelayedMatchConfig as DelayedMatchConfig
from .tasks import FlipFlopConfig as FlipFlopConfig
from .tasks import NeurogymTask as NeurogymTask
from .tasks import ParametricWMConfig as ParametricWMConfig
from .tasks import PerceptualDMConfig as PerceptualDMConfig
from .tasks import decision_score as decision_score
from .tasks import flipflop_dataset as flipflop_dataset
from .tasks import flipflop_test_set as flipflop_test_set
from .tasks import make_task as make_task
from .tasks import masked_mse as masked_mse
from .tasks import register_task as register_task
from .tasks import regression_score as regression_score
from .tasks import sample_flipflop as sample_flipflop
from .training import ConstraintConfig as ConstraintConfig
from .training import Constraints as Constraints
from .training import EnsembleConfig as EnsembleConfig
from .training import EnsembleTrainer as EnsembleTrainer
from .training import NoProgress as NoProgress
from .training import TensorBoardProgress as TensorBoardProgress
from .training import TextProgress as TextProgress
from .training import TqdmProgress as TqdmProgress
from .training import TrainConfig as TrainConfig
from .training import TrainState as TrainState
from .training import TrainStep as TrainStep
from .training import apply_constraints as apply_constraints
from .training import constraint_violations as constraint_violations
from .training import constraints_from_arrays as constraints_from_arrays
from .training import ensemble_constraints as ensemble_constraints
from .training import ensemble_outputs as ensemble_outputs
from .training import ensemble_size as ensemble_size
from .training import ensemble_states as ensemble_states
from .training import evaluate as evaluate
from .training import get_member as get_member
from .training import init_distributed as init_distributed
from .training import is_main_process as is_main_process
from .training import make_constraints as make_constraints
from .training import make_ensemble as make_ensemble
from .training import make_train_step as make_train_step
from .training import select_members as select_members
from .training import stack_members as stack_members
from .training import step_key as step_key

try:
    __version__ = version("ctrnn-ensembles")  # the distribution name (pyproject.toml); the import name stays ctrnn_jax
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"
