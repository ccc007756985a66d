"""Write jordan_plans.npz: plans and the action sequences they call for.

For ../jordan.yaml, after Jordan (1986), "Serial order: a parallel
distributed processing approach".  A *plan* is a one-hot vector held
constant for the whole sequence; it says which sequence to produce.  The
network sees nothing else: each next action must come from the plan and the
network's memory of its own past actions (its state units).

    plan 0:  a b c d c b
    plan 1:  d c b a b c
    plan 2:  a a b b c c

Plan 2 repeats letters, so "what comes after a" depends on how many a's were
already produced; the state's decay (mu) is what tells the two cases apart.

Keys are node names: ``plan`` (3, 6, 3) and ``y`` (3, 6, 4), one-hot letters.

Run from anywhere:  python specs/data/make_jordan_plans.py
"""

from pathlib import Path

import numpy as np

LETTERS = "abcd"
SEQUENCES = ["abcdcb", "dcbabc", "aabbcc"]


def main() -> None:
    n, t = len(SEQUENCES), len(SEQUENCES[0])
    plan = np.zeros((n, t, n), dtype=np.float32)          # (N, T, plans)
    y = np.zeros((n, t, len(LETTERS)), dtype=np.float32)  # (N, T, letters)
    for k, sequence in enumerate(SEQUENCES):
        plan[k, :, k] = 1.0                               # the same plan at every step
        for step, letter in enumerate(sequence):
            y[k, step, LETTERS.index(letter)] = 1.0
    out = Path(__file__).with_name("jordan_plans.npz")
    np.savez(out, plan=plan, y=y)
    print(f"wrote {out}: plan {plan.shape}, y {y.shape}")


if __name__ == "__main__":
    main()
