"""The suite runs the numpy loops unless RNNGRAPH_LOOPS says otherwise: numba compiles
each new loop for seconds (cached on disk after), and the suite builds hundreds of
graphs once each.  tests/test_numba_loops.py checks the numba kernels against the
numpy loops on every spec; ``RNNGRAPH_LOOPS=auto pytest`` runs everything with them."""

import os

os.environ.setdefault("RNNGRAPH_LOOPS", "numpy")
