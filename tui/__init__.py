"""The rnngraph terminal UI (``rnngraph tui [SPEC]``; ``tui.app.run(path)``).

Four screens, on F2-F5 (tabs on the top line, clickable): **Edit** (the YAML
beside the folded graph, problems as you type, tables, forms, inspector),
**Unroll** (the time-indexed DAG, a column per step with its inputs at the
bottom and outputs at the top; arcs from earlier steps end in ``▶``, arcs
from later steps (negative delays) in ``◀``; drawn to fit the screen, with
one-row boxes and fewer steps a page where needed; a cursor, the
highlighted vertex, moved by the arrows or following the Step screen, shows
its equation), **Step** (one sample of the spec's data step by step;
backward mode shows ``|dL/dv_n(t)|`` per node and step on a log scale, from
the last step back, so vanishing gradients show; a Hopfield net settles its
cue as ``net.settle`` does: an async one a unit per ``→`` and a sweep per
``]``, a sync one a sweep per step, a continuous one an Euler step per step) and **Train**
(a training worker with a live loss plot that pauses and resumes).  F1 (or ``?`` outside a text field) lists a screen's
keys; the footer shows the main ones; Ctrl+P opens the command palette;
Ctrl+S saves; Ctrl+N starts from a template; Ctrl+Q quits (asking first
when there are unsaved edits).

Reliability: while the text has problems the pictures and the Edit screen's
tables keep the last valid version (framed as such) and the problems are
listed; no edit ends the app.  Pictures are laid out and drawn in worker
threads that stop as soon as a newer picture is asked for, so keys are
answered meanwhile.  Unsaved edits are backed up (``.<name>.rnngraph-backup``
beside the spec, or under ``~/.local/state/rnngraph``) a second after typing
stops and on SIGTERM/SIGHUP, which end the app (within a few seconds
whatever it is doing); the next start offers to restore them.

Layout:

* ``app.py``, ``app.tcss``: the App, its modes and global actions.
* ``screens/``, ``widgets/``, ``dialogs/``: Textual code, one role each.
* ``model.py`` (what the engine says about the text), ``yamledit.py``
  (comment-keeping edits), ``layout.py`` + ``canvas.py`` (the folded
  picture), ``unrolled.py`` (the unrolled picture), ``equations.py``,
  ``stepping.py``, ``plot.py``, ``templates.py``, ``document.py`` (file,
  saving, backups): plain Python, no Textual, each testable alone.

The ``rnngraph`` engine never imports this package.
"""
