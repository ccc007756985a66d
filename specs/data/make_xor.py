"""Write xor.npz: the four XOR cases as one-step sequences, for ../mlp.yaml.

A data file holds one array per input and output node, keyed by the node's
name, each shaped (N, T, size): here N = 4 cases, T = 1 step (a one-to-one
problem has no time axis to speak of), size 2 for ``x`` and 1 for ``y``.

Run from anywhere:  python specs/data/make_xor.py
"""

from pathlib import Path

import numpy as np

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)  # (4, 2)
y = np.array([[0], [1], [1], [0]], dtype=np.float32)              # (4, 1): x1 XOR x2

out = Path(__file__).with_name("xor.npz")
np.savez(out, x=x[:, None, :], y=y[:, None, :])                    # (4, 1, 2), (4, 1, 1)
print(f"wrote {out}: x {x[:, None, :].shape}, y {y[:, None, :].shape}")
