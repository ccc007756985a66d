"""Write sine_latch.npz and sine_latch_eval.npz: next-value prediction of sines
of different frequencies, each sequence's frequency given as an initial state.

For ../primitives.yaml.  Each sequence is x(t) = sin(w t + phi) with its own
w and phi; the target is the next value, y(t) = x(t + 1).  The frequency w is
not fed as an input: it is the initial value of the node ``freq`` (which
has ``init: input``), stored under the key ``freq.init`` with shape (N, 1).

Keys: ``x`` (N, T, 1), ``y`` (N, T, 1), ``freq.init`` (N, 1).

Run from anywhere:  python specs/data/make_sine_latch.py
"""

from pathlib import Path

import numpy as np

T = 40


def make(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    w = rng.uniform(0.2, 0.8, size=(n, 1))              # (N, 1) radians per step
    phi = rng.uniform(0.0, 2 * np.pi, size=(n, 1))      # (N, 1)
    t = np.arange(T + 1)[None, :]                        # (1, T+1)
    wave = np.sin(w * t + phi).astype(np.float32)        # (N, T+1)
    return {"x": wave[:, :-1, None], "y": wave[:, 1:, None],
            "freq.init": w.astype(np.float32)}


def main() -> None:
    rng = np.random.default_rng(7)
    here = Path(__file__).parent
    for name, n in [("sine_latch.npz", 256), ("sine_latch_eval.npz", 64)]:
        arrays = make(rng, n)
        np.savez(here / name, **arrays)
        print(f"wrote {here / name}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
