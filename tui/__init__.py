"""The rnngraph terminal UI (``rnngraph tui [SPEC]``; ``tui.app.run(path)``).

Four screens, on F2-F5: **Edit** (the YAML beside the folded graph, problems
as you type, tables, forms, inspector), **Unroll** (the time-indexed DAG,
time as columns, equations of vertices), **Step** (values of one sample,
step by step, forward and backward) and **Train** (a cancellable training
worker with a live loss plot).  F1 or ``?`` lists a screen's keys; Ctrl+P
opens the command palette; Ctrl+S saves; Ctrl+N starts from a template;
Ctrl+Q quits (asking first when there are unsaved edits).

Layout:

* ``app.py``, ``app.tcss``: the App, its modes and global actions.
* ``screens/``, ``widgets/``, ``dialogs/``: Textual code, one role each.
* ``model.py`` (engine adapter), ``yamledit.py`` (comment-keeping edits),
  ``layout.py`` + ``canvas.py`` (the pictures), ``equations.py``,
  ``stepping.py``, ``plot.py``, ``templates.py``, ``document.py``: plain
  Python, no Textual, each testable alone.

The ``rnngraph`` engine never imports this package.
"""
