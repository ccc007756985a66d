"""Elman's (1990) analysis of the letters net: do its hidden states group by letter class?

Reads the arrays ``rnngraph predict specs/elman_letters.yaml --nodes all``
wrote, labels every hidden state by the letter being read (the input ``x``,
6 phonetic features) and its place in the vowel run (``i1`` is the first
``i`` after ``d``), and prints:

* the mean hidden vector of each label, clustered hierarchically (average
  linkage, scipy) when scipy is installed, else projected on its two
  principal components (numpy);
* how often a hidden state's nearest label mean is of its own class
  (consonant or vowel).

With matplotlib it saves a figure: every hidden state on the first two
principal components, coloured by letter, with the dendrogram beside it
when scipy is there.

    rnngraph run specs/elman_letters.yaml --out runs/letters
    rnngraph predict specs/elman_letters.yaml --params runs/letters/params.npz --nodes all --out letters_all.npz
    python examples/elman_clusters.py letters_all.npz docs/img/elman_letters_hidden.png
"""

from __future__ import annotations

import sys

import numpy as np

FEATURES = {  # Consonant, Vowel, Interrupted, High, Back, Voiced (specs/data/make_letters.py)
    "b": [1, 0, 1, 0, 0, 1], "d": [1, 0, 1, 1, 0, 1], "g": [1, 0, 1, 0, 1, 1],
    "a": [0, 1, 0, 0, 1, 1], "i": [0, 1, 0, 1, 0, 1], "u": [0, 1, 0, 1, 1, 1],
}
CONSONANTS = "bdg"


def labels_of(x: np.ndarray) -> np.ndarray:
    """(N, T) labels such as ``"d"``, ``"i1"``, ``"i2"`` from the inputs ``x`` (N, T, 6)."""
    codes = np.array(list(FEATURES.values()))                          # (6, 6)
    letters = np.array(list(FEATURES))[np.argmin(
        np.abs(x[:, :, None, :] - codes[None, None]).sum(-1), axis=-1)]  # (N, T)
    labels = letters.astype(object)
    for n in range(letters.shape[0]):
        run = 0
        for t in range(letters.shape[1]):
            run = 0 if letters[n, t] in CONSONANTS else run + 1
            if letters[n, t] in "iu":
                labels[n, t] = f"{letters[n, t]}{run}"
    return labels


def principal_components(h: np.ndarray, k: int = 2) -> np.ndarray:
    """``h`` (M, H) projected on its first ``k`` principal components, (M, k)."""
    centred = h - h.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T


def main(path: str, figure: str | None = None) -> float:
    """Print the analysis (and save ``figure``); returns the nearest-mean class agreement."""
    with np.load(path) as data:
        x, hidden = data["x"], data["hidden"]                           # (N, T, 6), (N, T, 20)
    x, hidden = x[:, 1:], hidden[:, 1:]        # step 0 has no context yet: its vowel count is unknown
    labels = labels_of(x).ravel()
    h = hidden.reshape(-1, hidden.shape[-1])                           # (N*T, 20)
    names = sorted(set(labels), key=lambda s: ("bdgaiu".index(s[0]), s))
    means = np.array([h[labels == n].mean(axis=0) for n in names])     # (labels, 20)
    is_consonant = np.array([n[0] in CONSONANTS for n in names])
    nearest = np.argmin(((h[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    own = np.array([label[0] in CONSONANTS for label in labels])
    same_class = float(np.mean(is_consonant[nearest] == own))
    print(f"{h.shape[0]} hidden states, labels {', '.join(names)}")
    print(f"nearest label mean of the same class (consonant/vowel): {same_class:.1%}")
    try:
        from scipy.cluster.hierarchy import dendrogram, linkage
    except ImportError:
        linkage = None
        print("scipy is not installed: the label means on their first two principal components")
        for n, (a, b) in zip(names, principal_components(means)):
            print(f"  {n:3s} {a:+.3f} {b:+.3f}")
    else:
        tree = linkage(means, method="average")
        order = dendrogram(tree, labels=names, no_plot=True)["ivl"]
        print("hierarchical clustering (average linkage) of the label means, leaves in order:", " ".join(order))
    if figure is None:
        return same_class
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure")
        return same_class
    fig, axes = plt.subplots(1, 2 if linkage else 1, figsize=(11 if linkage else 6, 4.5), squeeze=False)
    pcs = principal_components(h)
    colours = dict(zip("bdgaiu", plt.get_cmap("tab10").colors))
    ax = axes[0, 0]
    for letter in "bdgaiu":
        pick = np.array([label[0] == letter for label in labels])
        ax.scatter(pcs[pick, 0], pcs[pick, 1], s=8, alpha=0.5, color=colours[letter], label=letter)
    centre = principal_components(np.vstack([h, means]))[-len(names):]
    for n, (a, b) in zip(names, centre):
        ax.annotate(n, (a, b), fontsize=9, weight="bold")
    ax.set_title("hidden states, first two principal components")
    ax.legend(title="letter read", markerscale=2)
    if linkage:
        dendrogram(tree, labels=names, ax=axes[0, 1], color_threshold=0)
        axes[0, 1].set_title("label means, average linkage")
    fig.tight_layout()
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    print(f"wrote {figure}")
    return same_class


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python examples/elman_clusters.py PREDICTIONS.npz [FIGURE.png]")
    main(*sys.argv[1:])
