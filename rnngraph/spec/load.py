"""The spec stage's entry points: YAML text or a file in, a validated and expanded ``Spec`` out.

``parse_spec`` reads the YAML (``source.py``), applies ``--set`` overrides,
validates it (``validate.py``), expands blocks (``blocks.py``) and checks the
primitive network as a whole (``primitive.py``); every mistake is a
``SpecError`` pointing at the YAML that caused it.
"""

from __future__ import annotations

from ..errors import DataError, SpecError
from ..io import open_regular
from .blocks import expand
from .model import Spec
from .primitive import check_primitive
from .source import Source, load_yaml
from .validate import Validator

def load_spec(path, overrides: dict | None = None) -> Spec:
    """Read and validate the spec file at ``path``.

    Raises
    ------
    SpecError
        If the file cannot be read or the spec is invalid; the message reads
        ``file:line:column: where: what``.
    ArgumentError
        ``path`` is not a str or os.PathLike, or ``overrides`` not a dict.
    """
    from ..arguments import overrides as overrides_argument, path as path_argument
    path = path_argument("load_spec: path", path)
    overrides_argument("load_spec: overrides", overrides)
    try:
        with open_regular(path, "spec file") as fh:   # a FIFO or a device is refused, not read
            raw = fh.read(8 * 1024 * 1024 + 1)
    except DataError as exc:
        raise SpecError(str(exc).removeprefix(f"{path}: "), path=path) from None
    except FileNotFoundError:
        raise SpecError("no such file", path=path) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", path=path) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start:exc.start].decode("utf-8", "replace")) + 1
        raise SpecError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot start or continue a character",
                        path=path, line=raw.count(b"\n", 0, exc.start) + 1, column=column) from None
    return parse_spec(text, path=path, overrides=overrides)


def parse_spec(text: str, path: str | None = None, overrides: dict | None = None) -> Spec:
    """Parse and validate spec text.  ``path`` names it in messages and sets
    the default ``name`` (the file's stem) and the base of relative data paths.

    ``overrides`` maps dotted key paths to values applied before validation
    (the CLI's ``--set train.optimizer.lr=0.01``).

    Raises SpecError for an invalid spec, ArgumentError when ``text`` is not
    a str (or ``path``, ``overrides`` have the wrong type).
    """
    from ..arguments import overrides as overrides_argument, path as path_argument
    if not isinstance(text, str):
        from ..errors import ArgumentError
        hint = "; to read a file, use load_spec(path)" if not isinstance(text, bytes) else "; decode it first"
        raise ArgumentError(f"parse_spec: expected the spec's YAML text as a str, got {type(text).__name__}{hint}")
    if path is not None:
        path = path_argument("parse_spec: path", path)
    overrides_argument("parse_spec: overrides", overrides)
    data, source = load_yaml(text, path)
    if overrides:
        data = apply_overrides(data, overrides, source)
    validator = Validator(data, source, path)
    spec = validator.spec()
    primitive = expand(spec)
    validator.parameter_names(primitive)
    validator.training_options(spec, primitive)
    validator.raise_if_errors()
    check_primitive(primitive)
    spec.primitive = primitive if primitive.nodes is not spec.nodes else None
    return spec


def apply_overrides(data, overrides: dict, source: Source):
    """Set ``a.b.c = value`` in the parsed YAML, creating mappings on the way.

    A segment that is an integer indexes a list (``edges.0.delay``).  Mistakes
    in an overridden value are reported at its origin: ``overrides.sources[key]``
    when ``overrides`` is an ``Overrides`` (the CLI's ``--set``), else ``--set KEY``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return data
    sources = getattr(overrides, "sources", {})
    for dotted, value in overrides.items():
        origin = sources.get(dotted) or Source(path=f"--set {dotted}")
        parts = dotted.split(".")
        node = data
        keypath = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.lstrip("-").isdigit() or len(part) > 12 or not -len(node) <= int(part) < len(node):
                    raise SpecError(f"{part[:20]!r} is not an index of the list at "
                                    f"{'.'.join(parts[:i]) or 'the top'} (it has {len(node)} items)",
                                    path=origin.path)
                part = int(part) % len(node)
            elif not isinstance(node, dict):
                raise SpecError(f"{'.'.join(parts[:i])} is not a mapping", path=origin.path)
            keypath.append(part)
            if last:
                node[part] = value
                source.overrides[tuple(keypath)] = origin
            else:
                if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
    return data
