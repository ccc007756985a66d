"""Write patterns.npz: 10 random memories of 100 units, for ../hopfield_file.yaml.

A Hopfield network's data file holds the patterns to store under the state
node's name, shaped (P, size), every entry -1 or +1: here P = 10 patterns of
the 100 units of ``s``.  ``train.method`` picks the storage rule; the run
makes noisy cues from the patterns (10% of the units flipped) and measures
recall as for the ``patterns`` generator.

Run from anywhere:  python specs/data/make_patterns.py
"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(0)
s = np.where(rng.random((10, 100)) < 0.5, -1.0, 1.0).astype(np.float32)   # (10, 100) of +-1

out = Path(__file__).with_name("patterns.npz")
np.savez(out, s=s)
print(f"wrote {out}: s {s.shape}")
