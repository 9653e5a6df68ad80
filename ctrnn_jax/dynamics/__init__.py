"""Dynamical-systems analysis: the fixed-point finder with linearization, and the cube analysis of the
flip-flop memory states.
"""

from ._cube import analyze_fixed_points as analyze_fixed_points
from ._cube import cube_analysis as cube_analysis
from ._cube import ensemble_summary as ensemble_summary
from ._cube import format_cube_table as format_cube_table
from ._cube import procrustes_disparity as procrustes_disparity
from ._fixed_points import FixedPoints as FixedPoints
from ._fixed_points import find_fixed_points as find_fixed_points
from ._fixed_points import initial_states_from_trajectories as initial_states_from_trajectories
