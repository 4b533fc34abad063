"""A deployment's own sentiment model: a local transformers sequence-classification model whose
labels are negative / neutral / positive (any case, e.g. cardiffnlp's Twitter models).

Used when ``INTELLIGENCE_MODEL_DIR`` points at one; intent still comes from the packaged encoder
and heads. A model with only two labels (negative, positive) gives neutral probability 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from intelligence.labels import SENTIMENTS

MAX_TOKENS = 128


def _label_index(config: dict[str, object]) -> dict[str, int] | None:
    """Our sentiment label -> the model's output index, or None if its labels are not those."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict):
        return None
    found = {str(name).lower(): int(i) for i, name in id2label.items()}
    if not {"negative", "positive"} <= set(found) or not set(found) <= set(SENTIMENTS):
        return None
    return {label: found[label] for label in SENTIMENTS if label in found}


class SentimentModel:
    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        index = _label_index(config)
        if index is None:
            raise ValueError(f"{model_dir} has no negative/neutral/positive labels")
        self.index = index
        self.name = model_dir.name
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, local_files_only=True
        ).eval()

    @staticmethod
    def fits(model_dir: Path) -> bool:
        """True if ``model_dir`` is a sequence-classification model with sentiment labels."""
        path = model_dir / "config.json"
        if not path.exists():
            return False
        config = json.loads(path.read_text(encoding="utf-8"))
        architectures = config.get("architectures") or []
        is_classifier = any(str(a).endswith("ForSequenceClassification") for a in architectures)
        return is_classifier and _label_index(config) is not None

    @torch.inference_mode()
    def probabilities(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """(len(texts), 3) probabilities in ``SENTIMENTS`` order."""
        out = np.zeros((len(texts), len(SENTIMENTS)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            probs = torch.softmax(self.model(**batch).logits, dim=-1).numpy()
            for column, label in enumerate(SENTIMENTS):
                if label in self.index:
                    out[chunk, column] = probs[:, self.index[label]]
        return out
