"""Execution of a built network: the folded graph and its unrolling (graph.py), the
schedule by components (plan.py), the tape of VJPs (autodiff.py) the executor runs the
plan on, time loops as a plain loop (loop.py) or compiled (compile/), the independent
definition (reference.py), RTRL, teacher forcing, dropout, Hopfield dynamics, and
``Network`` (network.py), which owns what a built network works out once (program.py)."""
