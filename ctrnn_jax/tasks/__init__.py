"""Cognitive tasks: the task interface (`AbstractTask`), the 3-bit flip-flop, decision and memory tasks, Go/Anti and
delayed non-match (`GoConfig`, `DelayedNonMatchConfig`), the multitask (`MultitaskConfig`, with Yang et al. 2019's
preset), NeuroGym environments (`NeurogymTask`, neurogym imported lazily), and the registry.
Tasks never import models.
"""

from ._decision import ContextDMConfig as ContextDMConfig
from ._decision import PerceptualDMConfig as PerceptualDMConfig
from ._flipflop import FlipFlopConfig as FlipFlopConfig
from ._flipflop import flipflop_dataset as flipflop_dataset
from ._flipflop import flipflop_test_set as flipflop_test_set
from ._flipflop import sample_flipflop as sample_flipflop
from ._memory import DelayedMatchConfig as DelayedMatchConfig
from ._memory import ParametricWMConfig as ParametricWMConfig
from ._multitask import MultitaskConfig as MultitaskConfig
from ._multitask import TaskSlot as TaskSlot
from ._neurogym import NeurogymTask as NeurogymTask
from ._task import AbstractTask as AbstractTask
from ._task import check_task as check_task
from ._task import decision_score as decision_score
from ._task import masked_mse as masked_mse
from ._task import regression_score as regression_score
from ._tasks import TASKS as TASKS
from ._tasks import make_task as make_task
from ._tasks import register_task as register_task
from ._tasks import task_from_dict as task_from_dict
from ._yang import DelayedNonMatchConfig as DelayedNonMatchConfig
from ._yang import GoConfig as GoConfig
