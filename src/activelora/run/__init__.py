"""One active-learning run: one strategy with one seed, resumable, in its own folder. It knows
nothing of the experiment around it (:mod:`activelora.experiment`) or of worker processes.

- :mod:`.loop`          the driver, ``ActiveLearningRun``: phase after phase, round after round,
                        each recorded in ``state.json`` once its outputs are on disk;
- :mod:`.phases`        the phases, one unit each: ``select`` (where the batch is chosen),
                        ``label`` (where the labels are stored), ``train``, ``evaluate``
                        (with the probe-set metrics), ``score`` (where the pool is scored);
- :mod:`.context`       what the phases share: settings, data, model, the folder's layout;
- :mod:`.rundir`        the run folder's durable state (``state.json``: rounds, selected ids,
                        labels) and the config hash that guards a resume;
- :mod:`.oracle`        who answers a selected batch (the simulation reveals the gold answers);
- :mod:`.training`      LoRA training with STAR's hybrid regularisation (what it applies:
                        :mod:`activelora.models.regularization`);
- :mod:`.experiment_data` the pool, test and probe sets every run of an experiment shares;
- :mod:`.pool_scoring`  ``PoolScorer``: the examples scored with what the strategy asked for;
- :mod:`.sharded`       evaluation and pool scoring split over the processes of a launch;
- :mod:`.tracking`      losses and round metrics to TensorBoard / W&B / MLflow (``--report-to``).

The strategies that rank the pool live in :mod:`activelora.strategies`.
"""
