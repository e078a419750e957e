"""An experiment: every (strategy, seed) run of a config, run here or in worker processes, then
reported. It sits above :mod:`activelora.run` (one run), which knows nothing of it.

- :mod:`.plan`      which (strategy, seed) runs there are, their folders and round counts;
- :mod:`.runner`    ``run_experiment``: the runs one after another here, or in workers;
- :mod:`.runs`      one (strategy, seed) on a model loaded once for the experiment;
- :mod:`.baseline`  the zero-shot accuracy every learning curve rises from;
- :mod:`.workers`   ``--jobs N``: runs side by side in spawned worker processes;
- :mod:`.report`    learning-curve tables, ``summary.json``, ``report.md`` and plots;
- :mod:`.paired`    paired statistics between strategies (t interval, McNemar discordance).
"""
