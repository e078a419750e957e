"""Query strategies: random, passive, naive uncertainty, subtract, STAR (+ ablations), the
headroom oracles (oracle-*: they read gold answers), the low-budget typiclust, probcover,
cluster-weighted and adaptive, star-weighted (STAR within cluster-weighted quotas) and
accuracy-weighted and learning-zone (clusters weighted by held-out accuracy at selection); registry.

Look one up with :func:`get_strategy`; ``STRATEGIES.names()`` lists them.
"""

from .base import STRATEGIES, Needs, PoolView, Selection, Strategy, get_strategy, rank, register
from .builtin import MC_MEASURES, UNCERTAINTY_MEASURES
from . import oracles  # noqa: F401  (registers the oracle-* strategies: headroom studies only)
# The label-free low-budget strategies (typiclust, probcover, cluster-weighted, adaptive) and
# star-weighted:
from . import typiclust, probcover, cluster_weighted, adaptive, star_weighted  # noqa: F401,E402  (registers them)
from . import accuracy_weighted  # noqa: F401,E402  (registers it: cluster weights from held-out accuracy)
from . import learning_zone  # noqa: F401,E402  (registers it: middling held-out accuracy first)
from .diversity import candidate_count, k_center_greedy
from .normalize import min_max_normalize
from .schedules import SCHEDULES, make_schedule

__all__ = [
    "MC_MEASURES",
    "Needs",
    "PoolView",
    "SCHEDULES",
    "STRATEGIES",
    "Selection",
    "Strategy",
    "UNCERTAINTY_MEASURES",
    "candidate_count",
    "get_strategy",
    "k_center_greedy",
    "make_schedule",
    "min_max_normalize",
    "rank",
    "register",
]
