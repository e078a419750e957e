"""Active learning with a person in the loop: a campaign folder, batches out, answers in.

``activelora campaign init|next|import|status|export`` (see :mod:`activelora.commands.campaign`).
The parts, one responsibility each:

- :mod:`.folder`     the folder on disk, its settings, atomic commits and crash recovery;
- :mod:`.state`      labels, skips, conflicts and history, and the rules for changing them;
- :mod:`.importers`  answer files (JSONL, CSV) and Label Studio exports, validated up front;
- :mod:`.round`      one ``next``: train, evaluate, stop-set answers, select, suggest;
- :mod:`.stopping`   budget, dev target, and stabilising predictions (Cohen's kappa);
- :mod:`.labelstudio` the project on a Label Studio server, through ``label-studio-sdk``;
- :mod:`.workflow`   the five actions the CLI calls.
"""

from .folder import Campaign
from .workflow import (export_labels, import_file, import_labelstudio, import_records, init_campaign, next_round,
                       status)

__all__ = ["Campaign", "export_labels", "import_file", "import_labelstudio", "import_records", "init_campaign",
           "next_round", "status"]
