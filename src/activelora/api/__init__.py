"""The public Python API: what the commands do, callable and typed (``from activelora import ...``).

- :mod:`.experiment`  ``Experiment``: build from a Config or a YAML file with the CLI's
                      overrides, ``.run()`` it;
- :mod:`.results`     ``ExperimentResult``: its runs, curves and the paired comparison, as objects;
- :mod:`.campaigns`   ``Campaign``: label your own data (init, next_batch, add_labels, status, export);
- :mod:`.scoring`     ``score_examples``: a model and examples in, per-example uncertainties out;
- :mod:`.settings`    ``load_config``: defaults < YAML or Config < ``--set``-style overrides.

Your own strategy is a subclass of :class:`activelora.strategies.Strategy` registered with
:func:`activelora.strategies.register`; the CLI finds it with ``--plugin``.
"""

from .campaigns import Batch, Campaign
from .experiment import Experiment
from .results import Curve, CurvePoint, ExperimentResult, Interval, PairedComparison, RunResult
from .scoring import as_examples, score_examples
from .settings import Overrides, load_config

__all__ = ["Batch", "Campaign", "Curve", "CurvePoint", "Experiment", "ExperimentResult", "Interval", "Overrides",
           "PairedComparison", "RunResult", "as_examples", "load_config", "score_examples"]
