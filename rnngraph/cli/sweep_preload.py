"""Imported by a local sweep's fork server before it forks any worker (see
``sweep_runs.start_fork_server``): what every worker needs, imported once,
while the sweep's own process plans, instead of once per worker after."""

import signal

# an interrupt during these imports is the sweep's to handle, not a traceback from here
signal.signal(signal.SIGINT, signal.SIG_IGN)

try:
    import numpy  # noqa: F401
    from rnngraph.cli import sweep_batch, sweep_job  # noqa: F401
    from rnngraph.training import experiment, replicas  # noqa: F401
    from rnngraph.engine.compile import codegen, runtime  # noqa: F401
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
except Exception:   # noqa: BLE001 - a worker imports what it needs itself anyway
    pass
