"""Dynamical-systems analysis: the fixed-point finder with linearization (slow points included), the memory
states (attractors and marginal manifolds), the cube analysis of the flip-flop memory states, the saddle
completion and the fixed-point topology graphs with their distances; and the behavioural memory check,
which runs the network itself (no finder) from its memory states.
"""

from ._behaviour import MemoryCheck as MemoryCheck
from ._behaviour import memory_check as memory_check
from ._config import FixedPointConfig as FixedPointConfig
from ._continuation import Continuation as Continuation
from ._continuation import follow_fixed_points as follow_fixed_points
from ._cube import analyze_fixed_points as analyze_fixed_points
from ._cube import cube_analysis as cube_analysis
from ._cube import ensemble_summary as ensemble_summary
from ._cube import format_cube_table as format_cube_table
from ._cube import procrustes_disparity as procrustes_disparity
from ._cube import sharded_analyze_fixed_points as sharded_analyze_fixed_points
from ._fixed_point_set import FixedPoints as FixedPoints
from ._fixed_points import complete_saddles as complete_saddles
from ._fixed_points import find_fixed_points as find_fixed_points
from ._fixed_points import initial_states_from_trajectories as initial_states_from_trajectories
from ._linearization import Linearization as Linearization
from ._linearization import PredictionError as PredictionError
from ._linearization import linearize as linearize
from ._linearization import linearize_states as linearize_states
from ._linearization import prediction_error as prediction_error
from ._memory_states import MemoryStates as MemoryStates
from ._memory_states import memory_states as memory_states
from ._selection import Selection as Selection
from ._selection import selection_analysis as selection_analysis
from ._stage import fixed_point_candidates as fixed_point_candidates
from ._stage import fixed_point_stage as fixed_point_stage
from ._stage import probe_trials as probe_trials
from ._stage import slow_threshold as slow_threshold
from ._switching import Switching as Switching
from ._switching import pulse_switching as pulse_switching
from ._topology import MemberGraph as MemberGraph
from ._topology import Topology as Topology
from ._topology import graph_spectrum_distance as graph_spectrum_distance
from ._topology import linearization_distance as linearization_distance
from ._topology import pairwise_graph_distances as pairwise_graph_distances
from ._topology import topology_distance as topology_distance
from ._topology import topology_graph as topology_graph
