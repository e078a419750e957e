"""``python -m activelora ...``: the CLI as a module, which ``accelerate launch -m activelora``
and ``torchrun -m activelora`` need.

Under a launcher, a process whose peer died sees torch.distributed's transport error; the
peer printed the cause and the launcher reports the exit, so this process exits with code 2
and no traceback instead of adding a second, misleading one.
"""

from __future__ import annotations

import os
import sys

from .cli import main
from .multiprocess.distributed import is_peer_loss, launched_world_size


def single_cpu_launch_warning(environ=None) -> str | None:
    """The line to print when ``accelerate launch --cpu --num_processes N`` (N > 1) started
    only this one process, else None.

    accelerate starts several CPU processes only through ``mpirun`` (``--mpirun_hostfile``);
    without it ``--cpu`` runs the script once, with the rendezvous address of a multi-process
    launch (``MASTER_ADDR``, set only when N > 1) but no ``WORLD_SIZE``. The run is still
    correct, on one process, so this is a warning rather than an error.
    """
    environ = os.environ if environ is None else environ
    cpu = environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    if cpu and environ.get("MASTER_ADDR") and launched_world_size(environ) <= 1:
        return ("activelora: warning: accelerate launch --cpu started 1 process (it starts several CPU "
                "processes only with --mpirun_hostfile); for N processes on CPUs use "
                "`accelerate launch --multi_gpu --num_processes N -m activelora ...`, which uses gloo "
                "where there is no GPU")
    return None


def run() -> int:
    warning = single_cpu_launch_warning()
    if warning:
        print(warning, file=sys.stderr)
    try:
        return main()
    except RuntimeError as exc:
        if is_peer_loss(exc):
            return 2
        raise


if __name__ == "__main__":
    sys.exit(run())
