"""The `reconcile` command's entry point: main(), then a quick way out.

When a command is done, the interpreter's own teardown frees every object the run made, one at a time (a
plan of a few hundred deployments holds hundreds of thousands); that takes about as long as the plan's
reads of a few hundred deployments.  Nothing needs it: so once the exit handlers have run and the output is
flushed, the process ends at once.  When a thread that is not a daemon is still running (a trigger's, say),
the interpreter's usual exit waits for it instead.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

from .app import main


def run() -> NoReturn:
    code = main()
    if any(t is not threading.current_thread() and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()     # what the run registered (the parse cache's last entries, temporary files)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):    # a closed pipe (`reconcile plan | head`): nothing more to say
            pass
    os._exit(code)
