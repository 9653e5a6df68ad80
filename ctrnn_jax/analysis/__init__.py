"""Analyses and figures of trained ensembles: success, robustness, comparison of realizations, every
figure (returned as a matplotlib `Figure`; written as PNG + PDF with `save_figure` or a `path`), and the
`report.md` of a run folder. The only layer that imports matplotlib (lazily, inside the plotting
functions).
"""

from ._analysis import compare_realizations as compare_realizations
from ._analysis import linear_cka as linear_cka
from ._analysis import pairwise_cka as pairwise_cka
from ._analysis import pairwise_procrustes as pairwise_procrustes
from ._analysis import pairwise_svcca as pairwise_svcca
from ._analysis import robustness_sweep as robustness_sweep
from ._analysis import size_sweep_summary as size_sweep_summary
from ._analysis import success_summary as success_summary
from ._analysis import svcca_distance as svcca_distance
from ._analyze import Analysis as Analysis
from ._analyze import analyze as analyze
from ._analyze import task_fixed_points as task_fixed_points
from ._compare import Comparison as Comparison
from ._compare import classical_mds as classical_mds
from ._compare import compare_ensembles as compare_ensembles
from ._compare import compare_runs as compare_runs
from ._compare import pairwise_switching as pairwise_switching
from ._compare import within_between as within_between
from ._compare import write_comparison as write_comparison
from ._explorer import explorer_figures as explorer_figures
from ._explorer import explorer_html as explorer_html
from ._explorer import write_explorer as write_explorer
from ._figure import pca_projection as pca_projection
from ._figure import save_figure as save_figure
from ._plot_bifurcation import plot_bifurcation_diagram as plot_bifurcation_diagram
from ._plot_compare import plot_distance_matrices as plot_distance_matrices
from ._plot_compare import plot_mds_pair as plot_mds_pair
from ._plot_compare import plot_topology_graphs as plot_topology_graphs
from ._plot_ensemble import plot_robustness as plot_robustness
from ._plot_ensemble import plot_similarity_matrices as plot_similarity_matrices
from ._plot_ensemble import plot_training_curves as plot_training_curves
from ._plot_flipflop import plot_ensemble_overview as plot_ensemble_overview
from ._plot_flipflop import plot_realizations as plot_realizations
from ._plot_flipflop import plot_state_space as plot_state_space
from ._plot_flipflop import plot_task_samples as plot_task_samples
from ._plot_flipflop import plot_test_set as plot_test_set
from ._plot_memory import plot_memory_lifetimes as plot_memory_lifetimes
from ._plot_network import plot_connectivity as plot_connectivity
from ._plot_network import plot_eigenvalues as plot_eigenvalues
from ._plot_network import plot_fixed_point_spectra as plot_fixed_point_spectra
from ._plot_network import plot_spectra_grid as plot_spectra_grid
from ._plot_task import plot_probe_state_space as plot_probe_state_space
from ._plot_task import plot_task_state_space as plot_task_state_space
from ._plot_task import plot_task_trials as plot_task_trials
from ._plot_units import plot_cluster_distribution as plot_cluster_distribution
from ._plot_units import plot_cluster_task_map as plot_cluster_task_map
from ._report import analyze_run as analyze_run
from ._similarity import dsa_distance as dsa_distance
from ._similarity import hankel_dmd as hankel_dmd
from ._similarity import pairwise_dsa as pairwise_dsa
from ._similarity import pairwise_procrustes_distance as pairwise_procrustes_distance
from ._similarity import procrustes_distance as procrustes_distance
from ._units import LesionEffects as LesionEffects
from ._units import Psychometric as Psychometric
from ._units import TaskVariance as TaskVariance
from ._units import UnitClusters as UnitClusters
from ._units import cluster_units as cluster_units
from ._units import lesion as lesion
from ._units import lesion_effects as lesion_effects
from ._units import psychometric as psychometric
from ._units import task_variance as task_variance
