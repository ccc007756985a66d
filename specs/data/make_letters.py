"""Write Elman's (1990) letter-prediction data: letters.npz and letters_eval.npz
(features), letters_tokens.npz and letters_tokens_eval.npz (the same letters
as integer tokens).

Elman, "Finding Structure in Time", Cognitive Science 14 (1990), section
"Structure in Letter Sequences".  Consonants b, d, g are drawn at random;
each is then followed by a fixed run of vowels:

    b -> ba      d -> dii      g -> guuu

so a stream looks like ``diibaguuubadii...``.  Which consonant comes next
cannot be predicted, but once a consonant is seen the vowels that follow it,
and how many, are certain.  A network that predicts the next letter well has
therefore learned to count.

Each letter is a 6-bit vector of phonetic features (Elman's Table 1):

    letter  Consonant Vowel Interrupted High Back Voiced
      b         1       0        1        0    0     1
      d         1       0        1        1    0     1
      g         1       0        1        0    1     1
      a         0       1        0        0    1     1
      i         0       1        0        1    0     1
      u         0       1        0        1    1     1

Elman trained on one stream of about 3000 letters.  rnngraph trains on
batches of sequences, so the stream is cut into N sequences of T letters.
Input ``x`` at step t is letter t; target ``y`` at step t is letter t + 1.
The feature files hold ``(N, T, 6)`` vectors; the token files hold the same
letters as ``(N, T)`` integers, the letter's index in ``LETTERS`` (b d g a i u),
which ../elman_letters_tokens.yaml reads with ``encoding: one_hot`` and class targets
(../elman_letters.yaml reads the features).

Run from anywhere:  python specs/data/make_letters.py
"""

from pathlib import Path

import numpy as np

FEATURES = {  # Consonant, Vowel, Interrupted, High, Back, Voiced
    "b": [1, 0, 1, 0, 0, 1],
    "d": [1, 0, 1, 1, 0, 1],
    "g": [1, 0, 1, 0, 1, 1],
    "a": [0, 1, 0, 0, 1, 1],
    "i": [0, 1, 0, 1, 0, 1],
    "u": [0, 1, 0, 1, 1, 1],
}
SYLLABLE = {"b": "ba", "d": "dii", "g": "guuu"}
LETTERS = "bdgaiu"   # token k is LETTERS[k]


def letter_stream(rng: np.random.Generator, n_letters: int) -> str:
    """At least ``n_letters`` letters of random consonants with their vowels."""
    parts, length = [], 0
    while length < n_letters:
        syllable = SYLLABLE[rng.choice(list(SYLLABLE))]
        parts.append(syllable)
        length += len(syllable)
    return "".join(parts)


def make(rng: np.random.Generator, n: int, t: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """n sequences of t steps: x = letters 0..t-1, y = letters 1..t; as features
    and as tokens."""
    x = np.zeros((n, t, 6), dtype=np.float32)  # (N, T, 6)
    y = np.zeros((n, t, 6), dtype=np.float32)  # (N, T, 6)
    tokens = np.zeros((n, t + 1), dtype=np.int64)  # (N, T + 1)
    for k in range(n):
        # start each sequence at a random offset so it may begin mid-syllable
        offset = int(rng.integers(0, 4))
        letters = letter_stream(rng, offset + t + 1)[offset:offset + t + 1]
        vectors = np.array([FEATURES[c] for c in letters], dtype=np.float32)
        x[k], y[k] = vectors[:-1], vectors[1:]
        tokens[k] = [LETTERS.index(c) for c in letters]
    return {"x": x, "y": y}, {"x": tokens[:, :-1], "y": tokens[:, 1:]}


def main() -> None:
    rng = np.random.default_rng(1990)
    here = Path(__file__).parent
    for name, n in [("letters", 50), ("letters_eval", 10)]:
        features, tokens = make(rng, n, 60)  # 50 x 60 = 3000 letters, about Elman's stream
        for path, arrays in ((here / f"{name}.npz", features),
                             (here / f"{name.replace('letters', 'letters_tokens')}.npz", tokens)):
            np.savez(path, **arrays)
            print(f"wrote {path}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
