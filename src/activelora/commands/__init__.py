"""The command-line commands, one module each (``activelora <command> --help``): ``run``,
``compare``, ``train``, ``evaluate``, ``score``, ``probe`` and ``campaign``, with the flags they
share in :mod:`.common`. Each is thin: it parses flags and calls the library."""
