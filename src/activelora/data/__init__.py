"""Data: examples, tasks (prompt, target, answer extraction), loaders and the arith generator."""

from .arith import FAMILIES, FAMILY_NAMES, generate_arith
from .example import Example
from .loaders import load_examples
from .tasks import (
    TASKS,
    ArithTask,
    BoolQTask,
    GSM8KTask,
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
    "OBQATask",
    "PlainTask",
    "Task",
    "generate_arith",
    "get_task",
    "infer_task",
    "load_examples",
    "normalize_number",
    "numbers_equal",
]
