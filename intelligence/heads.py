"""Heads over sentence features, with temperature-scaled (calibrated) probabilities.

A head is linear (logistic regression) or has one hidden layer (GELU, tanh form so NumPy
computes exactly what PyTorch trained). Trained by ``intelligence.training``, stored as a small
``.npz`` in the repository (weights in float16), never a copy of the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


@dataclass(frozen=True)
class Head:
    labels: tuple[str, ...]
    weights: np.ndarray  # (len(labels), inputs or hidden)
    bias: np.ndarray  # (len(labels),)
    temperature: float = 1.0
    hidden_weights: np.ndarray | None = None  # (hidden, inputs)
    hidden_bias: np.ndarray | None = None  # (hidden,)

    def logits(self, features: np.ndarray) -> np.ndarray:
        if self.hidden_weights is not None and self.hidden_bias is not None:
            features = gelu(features @ self.hidden_weights.T + self.hidden_bias)
        return features @ self.weights.T + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(self.logits(features) / self.temperature)

    def with_temperature(self, temperature: float) -> Head:
        return Head(
            self.labels,
            self.weights,
            self.bias,
            temperature,
            self.hidden_weights,
            self.hidden_bias,
        )

    def save(self, path: Path) -> None:
        arrays = {
            "labels": np.array(self.labels),
            "weights": self.weights.astype(np.float16),
            "bias": self.bias.astype(np.float32),
            "temperature": np.array(self.temperature),
        }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            arrays["hidden_weights"] = self.hidden_weights.astype(np.float16)
            arrays["hidden_bias"] = self.hidden_bias.astype(np.float32)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Head:
        with np.load(path, allow_pickle=False) as data:
            hidden = "hidden_weights" in data.files
            return cls(
                labels=tuple(str(label) for label in data["labels"]),
                weights=data["weights"].astype(np.float32),
                bias=data["bias"].astype(np.float32),
                temperature=float(data["temperature"]),
                hidden_weights=data["hidden_weights"].astype(np.float32) if hidden else None,
                hidden_bias=data["hidden_bias"].astype(np.float32) if hidden else None,
            )
