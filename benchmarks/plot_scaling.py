"""Plot step time against T from a `python -m benchmarks.run --json FILE` run.

    python -m benchmarks.plot_scaling FILE docs/img/step-time-vs-T.png
"""

from __future__ import annotations

import json
import sys

COLUMNS = {"rnngraph": "rnngraph", "numpy": "hand-fused numpy", "torch_eager": "torch eager loop",
           "torch_fused": "torch nn.RNN/LSTM"}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        import matplotlib
    except ImportError:
        print("plot_scaling needs matplotlib: pip install -e '.[plot]'", file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(argv[0]) as f:
        rows = json.load(f)["scaling"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, cell in zip(axes, ("rnn", "lstm")):
        mine = sorted((r for r in rows if r["cell"] == cell), key=lambda r: r["steps"])
        steps = [r["steps"] for r in mine]
        for key, label in COLUMNS.items():
            times = [r["time"].get(key, {}).get("median_ms") for r in mine]
            if all(t is not None for t in times):
                ax.loglog(steps, times, marker="o", label=label)
        first = mine[0]
        ax.set_title(f"{cell.upper()} (input {first['input']}, hidden {first['hidden']}, batch {first['batch']})")
        ax.set_xlabel("T (steps)")
        ax.set_ylabel("ms per training step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(argv[1], dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
