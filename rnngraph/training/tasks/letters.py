"""5x7 bitmaps of the capital letters A-Z, for Hopfield memories.

Each glyph is 7 rows of 5 columns; ``#`` is on (+1), ``.`` is off (-1).
The shapes are those of the common 5x7 dot-matrix character-LCD font.
"""

from __future__ import annotations

import numpy as np

ROWS, COLS = 7, 5

_GLYPHS = """
A .###. #...# #...# ##### #...# #...# #...#
B ####. #...# #...# ####. #...# #...# ####.
C .###. #...# #.... #.... #.... #...# .###.
D ###.. #..#. #...# #...# #...# #..#. ###..
E ##### #.... #.... ####. #.... #.... #####
F ##### #.... #.... ####. #.... #.... #....
G .###. #...# #.... #.### #...# #...# .####
H #...# #...# #...# ##### #...# #...# #...#
I .###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.
J ..### ...#. ...#. ...#. ...#. #..#. .##..
K #...# #..#. #.#.. ##... #.#.. #..#. #...#
L #.... #.... #.... #.... #.... #.... #####
M #...# ##.## #.#.# #.#.# #...# #...# #...#
N #...# #...# ##..# #.#.# #..## #...# #...#
O .###. #...# #...# #...# #...# #...# .###.
P ####. #...# #...# ####. #.... #.... #....
Q .###. #...# #...# #...# #.#.# #..#. .##.#
R ####. #...# #...# ####. #.#.. #..#. #...#
S .#### #.... #.... .###. ....# ....# ####.
T ##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..
U #...# #...# #...# #...# #...# #...# .###.
V #...# #...# #...# #...# #...# .#.#. ..#..
W #...# #...# #...# #.#.# #.#.# #.#.# .#.#.
X #...# #...# .#.#. ..#.. .#.#. #...# #...#
Y #...# #...# .#.#. ..#.. ..#.. ..#.. ..#..
Z ##### ....# ...#. ..#.. .#... #.... #####
"""

NAMES = "".join(line.split()[0] for line in _GLYPHS.strip().splitlines())


def _parse() -> np.ndarray:
    glyphs = []
    for line in _GLYPHS.strip().splitlines():
        rows = line.split()[1:]
        assert len(rows) == ROWS and all(len(r) == COLS for r in rows), line
        glyphs.append([[1 if c == "#" else -1 for c in r] for r in rows])
    return np.array(glyphs, dtype=np.int8)                          # (26, 7, 5)


GLYPHS = _parse()


def letter_bitmaps(count: int, scale: int = 1) -> np.ndarray:
    """The first ``count`` letters (A, B, ...) as +-1 bitmaps, shape ``(count, 7 scale, 5 scale)``.

    ``scale`` repeats every dot into a ``scale x scale`` block.
    """
    g = GLYPHS[:count].astype(np.float64)
    return np.repeat(np.repeat(g, scale, axis=1), scale, axis=2)


def render(pattern, cols: int = COLS) -> str:
    """A +-1 vector as text, ``#`` for +1 and ``.`` otherwise, ``cols`` per row."""
    p = np.asarray(pattern).reshape(-1, cols)
    return "\n".join("".join("#" if v > 0 else "." for v in row) for row in p)
