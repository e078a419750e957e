"""Label: the oracle answers the selected batch; the labels are stored in ``state.json``
(:meth:`activelora.run.rundir.RunState.add_labels`: a label once stored never changes)."""

from __future__ import annotations

from ..context import RunContext
from ..oracle import Oracle


class LabelPhase:
    def __init__(self, ctx: RunContext, oracle: Oracle):
        self.ctx = ctx
        self.oracle = oracle

    def run(self) -> None:
        state = self.ctx.state
        pending = state.pending_label_ids()
        labels = self.oracle.label(pending)
        # An id the oracle leaves out is recorded as "ignored" (None): it leaves the pool.
        state.add_labels({i: labels.get(i) for i in pending})
