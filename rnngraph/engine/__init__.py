"""Execution: what a built network keeps (program.py), a time loop as a plain loop (loop.py),
and the compiled loops (compile/)."""
