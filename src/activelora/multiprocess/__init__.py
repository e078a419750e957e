"""One run spread over several processes (``accelerate launch``), data parallelism inside it,
and how many threads each process computes with.

- :mod:`.distributed`    who this process is, main-only writes, mirrored run folders, a
                         sharded map with its results gathered on every rank, agreement checks;
- :mod:`.data_parallel`  a training step's micro-batches split over the processes;
- :mod:`.threads`        compute threads per process (``--threads``, shared among ``--jobs``).

What is split over the processes lives with what it splits (:mod:`activelora.run.sharded`).
Independent runs side by side (``--jobs N``) are something else: :mod:`activelora.experiment.workers`.
"""
