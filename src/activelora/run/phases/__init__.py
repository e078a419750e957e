"""The phases of one active-learning round, one unit each, in the order a round runs them:

- :mod:`.select`    choose the batch: the seeded random initial set, then the strategy's pick
                    from the scores the previous round saved;
- :mod:`.label`     ask the oracle for the batch's labels and store them in ``state.json``;
- :mod:`.train`     train LoRA on every label so far and save the adapter;
- :mod:`.evaluate`  accuracy and calibration on the test split, the round's metrics row
                    (with the probe-set metrics of :mod:`.probe_metrics`);
- :mod:`.score`     score the unlabelled pool with what the strategy needs, for the next select.

Each writes its outputs atomically; the driver (:mod:`activelora.run.loop`) then records the
phase as done, so a crash redoes at most the phase that was running.
"""
