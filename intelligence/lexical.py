"""A lexical sentiment model beside the encoder: hashed word and character n-grams, TF-IDF,
logistic regression.

The English MiniLM encoder reads Pidgin and Swahili words ("wahala", "nzuri", "asante") as
fragments; n-grams learn them from the labelled tweets directly. Its log-probabilities are
averaged with the encoder head's (``intelligence.model``). Only n-grams seen at least
``MIN_COUNT`` times in training keep an IDF and weights, which keeps the file small; every
other n-gram gets the IDF of an unseen one, in training and at run time alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from intelligence.heads import softmax

BITS = 18  # 262,144 hashed n-grams per analyzer
MIN_COUNT = 2


def _vectorizers() -> tuple[HashingVectorizer, HashingVectorizer]:
    chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), n_features=2**BITS, alternate_sign=False, norm=None
    )
    words = HashingVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        n_features=2**BITS,
        alternate_sign=False,
        norm=None,
        token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
    )
    return chars, words


def counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """Raw n-gram counts: (len(texts), 2 * 2**BITS)."""
    chars, words = _vectorizers()
    return sparse.hstack([chars.transform(texts), words.transform(texts)]).tocsr()


@dataclass(frozen=True)
class Vocabulary:
    """IDF of the kept n-grams; every other n-gram weighs ``unseen_idf``."""

    kept: np.ndarray  # int32 column ids
    idf: np.ndarray  # float32, one per kept id
    unseen_idf: float

    @classmethod
    def fit(cls, matrix: sparse.csr_matrix) -> Vocabulary:
        document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])
        total_count = np.asarray(matrix.sum(axis=0)).ravel()
        kept = np.flatnonzero(total_count >= MIN_COUNT).astype(np.int32)
        n = matrix.shape[0]
        idf = np.log((1 + n) / (1 + document_frequency[kept])) + 1
        # Rounded as stored, so training sees the numbers inference will use.
        return cls(kept, idf.astype(np.float16).astype(np.float32), float(np.log(1 + n) + 1))

    def weighted(self, matrix: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear TF x IDF, rows L2-normalized, restricted to the kept columns."""
        matrix = matrix.astype(np.float32).tocsr(copy=True)
        matrix.data = 1.0 + np.log(matrix.data)
        scale = np.full(matrix.shape[1], self.unseen_idf, dtype=np.float32)
        scale[self.kept] = self.idf
        matrix = matrix @ sparse.diags(scale)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        matrix = sparse.diags(1.0 / np.maximum(norms, 1e-9)) @ matrix
        return matrix.tocsc()[:, self.kept].tocsr()


@dataclass(frozen=True)
class LexicalModel:
    labels: tuple[str, ...]
    vocabulary: Vocabulary
    weights: np.ndarray  # (len(labels), len(kept))
    bias: np.ndarray

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        features = self.vocabulary.weighted(counts(texts))
        return np.asarray(features @ self.weights.T) + self.bias

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            labels=np.array(self.labels),
            kept=self.vocabulary.kept,
            idf=self.vocabulary.idf.astype(np.float16),
            unseen_idf=np.array(self.vocabulary.unseen_idf),
            weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32),
        )

    @classmethod
    def load(cls, path: Path) -> LexicalModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                labels=tuple(str(label) for label in data["labels"]),
                vocabulary=Vocabulary(
                    data["kept"], data["idf"].astype(np.float32), float(data["unseen_idf"])
                ),
                weights=data["weights"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
            )
