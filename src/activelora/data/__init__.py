"""Data: examples, tasks (prompt, target, answer extraction), loaders and the embedded generators (arith, mix)."""

from .arith import FAMILIES, FAMILY_NAMES, generate_arith
from .example import Example
from .loaders import load_examples
from .mix import SKILL_NAMES, SKILLS, generate_mix
from .tasks import (
    TASKS,
    ArithTask,
    BoolQTask,
    GSM8KTask,
    MixTask,
    OBQATask,
    PlainTask,
    Task,
    get_task,
    infer_task,
    normalize_number,
    numbers_equal,
)

__all__ = [
    "FAMILIES",
    "FAMILY_NAMES",
    "TASKS",
    "ArithTask",
    "BoolQTask",
    "Example",
    "GSM8KTask",
    "MixTask",
    "OBQATask",
    "PlainTask",
    "SKILLS",
    "SKILL_NAMES",
    "Task",
    "generate_arith",
    "generate_mix",
    "get_task",
    "infer_task",
    "load_examples",
    "normalize_number",
    "numbers_equal",
]
