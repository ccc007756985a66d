"""Every exception rnngraph raises for a user's mistake, in one module.

Each carries enough to point at the cause: ``SpecError`` at a place in a spec
file, ``DataError`` at an array in a data file or a Python argument,
``RunError`` at an epoch and step of a training run.  The CLI prints their
``str()`` and exits with status 2 (spec, data) or 1 (run), never a traceback.
"""

from __future__ import annotations

import difflib


class RnngraphError(Exception):
    """Base class of every error caused by what a user wrote or supplied."""


class SpecError(RnngraphError, ValueError):
    """A spec is invalid.

    Attributes
    ----------
    path : str or None
        The spec file, or None for text given to ``parse_spec`` without one.
    line, column : int or None
        1-based position of the offending YAML, where known.
    where : str
        The key path, such as ``edges[2].to`` (empty for the whole document).
    what : str
        What is wrong, in words a user can act on.

    ``str(err)`` reads ``file:line:column: where: what``.
    """

    def __init__(self, what: str, *, path: str | None = None, line: int | None = None,
                 column: int | None = None, where: str = ""):
        self.what = what
        self.path = path
        self.line = line
        self.column = column
        self.where = where
        super().__init__(self.format())

    def format(self) -> str:
        location = self.path or "<spec>"
        if self.line is not None:
            location += f":{self.line}"
            if self.column is not None:
                location += f":{self.column}"
        parts = [location]
        if self.where:
            parts.append(self.where)
        parts.append(self.what)
        return ": ".join(parts)

    def __reduce__(self):  # keep keyword-only construction picklable (multiprocessing, hypothesis)
        return (_rebuild_spec_error, (self.what, self.path, self.line, self.column, self.where))


def _rebuild_spec_error(what, path, line, column, where):
    return SpecError(what, path=path, line=line, column=column, where=where)


class SpecErrors(SpecError):
    """Several independent mistakes found in one spec; behaves as the first.

    ``errors`` lists every ``SpecError``; ``str()`` prints one per line.
    """

    def __init__(self, errors: list[SpecError]):
        first = errors[0]
        self.errors = list(errors)
        super().__init__(first.what, path=first.path, line=first.line,
                         column=first.column, where=first.where)

    def format(self) -> str:
        return "\n".join(e.format() for e in getattr(self, "errors", [])) or super().format()

    def __reduce__(self):
        return (SpecErrors, (self.errors,))


class DataError(RnngraphError, ValueError):
    """Data given to a network (arrays, a data file) does not fit it.

    The message names the file or argument, the array and what was expected.
    """


class RunError(RnngraphError, RuntimeError):
    """A training run failed: it diverged, or a metric missed its threshold."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised by rnngraph's own signal handlers.

    A subclass, so every ``except KeyboardInterrupt`` catches it.  Its own
    type because CPython ends the process with SIGINT, whatever exit code it
    was given, once a plain KeyboardInterrupt has left code run through
    ``PyRun_String`` (as some extension modules' imports do), even when the
    interrupt was caught further up.
    """


class ArgumentError(DataError, TypeError):
    """A Python argument has the wrong type (a string where an array goes, a
    bool or a float where an integer goes, a list where a dict goes).

    Both a ``DataError`` (so a ``ValueError``) and a ``TypeError``: code that
    catches either, or the project's ``RnngraphError``, catches it.
    """


# --------------------------------------------------------------------------- message helpers

def suggest(word: str, options) -> str:
    """`` (did you mean 'x'?)`` when ``word`` is close to one of ``options``
    (``LSTM`` for ``lstm``: a match but for case comes first)."""
    options = [str(o) for o in options]
    same = [o for o in options if o.lower() == str(word).lower()]
    if same:
        return f" (did you mean {same[0]!r}?)"
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def a_or_an(word: str) -> str:
    """The article for ``word``: "an" before a vowel, else "a"."""
    word = str(word).lower()
    return "an" if word[:1] in "aeiou" or word == "lstm" else "a"   # "an LSTM" is read "an el-..."


def one_of(options) -> str:
    options = list(options)
    return ", ".join(repr(o) for o in options[:-1]) + f" or {options[-1]!r}" if len(options) > 1 else repr(options[0])
