"""The docs' "Writing a task" example (docs/tasks.md) runs as it is, and a user task goes through the library."""

import re
from pathlib import Path

import numpy as np

from ctrnn_jax.tasks._tasks import TASKS


def _docs_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text()
    section = text.split("## Writing a task", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_docs_task_example_trains():
    namespace: dict = {}
    try:
        exec(compile(_docs_example(), "docs/tasks.md", "exec"), namespace)
        scores = namespace["scores"]
        assert scores["accuracy"].shape == (4,)
        assert np.max(scores["accuracy"]) >= 0.9  # 300 steps are plenty for this toy task
        assert TASKS["sign"] is namespace["SignTask"]  # registered by name
    finally:
        TASKS.pop("sign", None)
