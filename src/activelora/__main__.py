"""``python -m activelora ...``: the CLI as a module, which ``accelerate launch -m activelora``
and ``torchrun -m activelora`` need.

Under a launcher, a process whose peer died sees torch.distributed's transport error; the
peer printed the cause and the launcher reports the exit, so this process exits with code 2
and no traceback instead of adding a second, misleading one.
"""

from __future__ import annotations

import sys

from .cli import main
from .distributed import is_peer_loss


def run() -> int:
    try:
        return main()
    except RuntimeError as exc:
        if is_peer_loss(exc):
            return 2
        raise


if __name__ == "__main__":
    sys.exit(run())
