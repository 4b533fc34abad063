"""Text in, signals out: the encoder and the two heads together."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intelligence.encoder import Encoder, default_model_dir, packaged_model_dir
from intelligence.heads import Head, log_softmax, softmax
from intelligence.labels import NEUTRAL, OTHER, SENTIMENTS
from intelligence.lexical import LexicalModel
from intelligence.sentiment_model import SentimentModel
from intelligence.signals import Signals
from intelligence.text import has_words, normalize

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_THRESHOLD = 0.5


def mix(head_logits: np.ndarray, lexical_logits: np.ndarray, lexical_share: float) -> np.ndarray:
    """The encoder head's and the lexical model's logits together: a weighted sum of their
    log-probabilities (the head's temperature applies to the sum)."""
    return (1 - lexical_share) * log_softmax(head_logits) + lexical_share * log_softmax(
        lexical_logits
    )


def weights_dir() -> Path:
    """The heads: ``INTELLIGENCE_WEIGHTS_DIR`` (heads you trained for your own encoder), else
    the ones shipped in the package."""
    configured = os.environ.get("INTELLIGENCE_WEIGHTS_DIR", "").strip()
    return Path(configured) if configured else WEIGHTS


@dataclass(frozen=True)
class Task:
    """One question (sentiment or intent): a head over the encoder's features, optionally mixed
    with a lexical model over the words."""

    head: Head
    lexical: LexicalModel | None = None
    lexical_share: float = 0.0

    @property
    def labels(self) -> tuple[str, ...]:
        return self.head.labels

    def probabilities(self, features: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        if self.lexical is None:
            return self.head.probabilities(features)
        logits = mix(self.head.logits(features), self.lexical.logits(texts), self.lexical_share)
        return softmax(logits / self.head.temperature)

    @classmethod
    def load(cls, weights: Path, name: str, share: float) -> Task:
        path = weights / f"{name}_lexical.npz"
        if not path.exists():
            return cls(Head.load(weights / f"{name}.npz"))
        return cls(Head.load(weights / f"{name}.npz"), LexicalModel.load(path), share)


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name, "").strip() or default)


class Classifier:
    def __init__(
        self,
        encoder: Encoder,
        sentiment: Task,
        intent: Task,
        *,
        model_version: str,
        layers: Sequence[int] = (-1,),
        threshold: float = DEFAULT_THRESHOLD,
        opt_out_threshold: float = DEFAULT_THRESHOLD,
        sentiment_model: SentimentModel | None = None,
    ) -> None:
        self.encoder = encoder
        self.sentiment = sentiment
        self.intent = intent
        self.model_version = model_version
        self.layers = tuple(layers)
        self.threshold = threshold
        self.opt_out_threshold = opt_out_threshold
        self.sentiment_model = sentiment_model

    @classmethod
    def load(cls, weights: Path | None = None, encoder: Encoder | None = None) -> Classifier:
        """The heads in ``weights`` over their encoder. ``INTELLIGENCE_MODEL_DIR`` may name a
        sequence-classification model with sentiment labels: it then answers sentiment, and the
        packaged encoder and heads answer intent."""
        weights = weights or weights_dir()
        meta = json.loads((weights / "model.json").read_text(encoding="utf-8"))
        sentiment_model = None
        if encoder is None:
            configured = default_model_dir()
            if SentimentModel.fits(configured):
                sentiment_model = SentimentModel(configured)
                encoder = Encoder(packaged_model_dir())
            else:
                encoder = Encoder(configured)
        trained_for = meta.get("encoder_fingerprint")
        if trained_for and trained_for != encoder.fingerprint:
            raise RuntimeError(
                f"the heads in {weights} were trained for another encoder than {encoder.model_dir}:"
                " train heads for it (crm intelligence train --out DIR) and set"
                " INTELLIGENCE_WEIGHTS_DIR=DIR"
            )
        version = meta["model_version"]
        if sentiment_model is not None:
            version = f"{version}+{sentiment_model.name}"
        share = float(meta.get("lexical_share", 0.0))
        return cls(
            encoder,
            Task.load(weights, "sentiment", share),
            Task.load(weights, "intent", share),
            model_version=version,
            layers=meta.get("layers", [-1]),
            threshold=_setting("INTELLIGENCE_INTENT_THRESHOLD", meta.get("threshold", 0.5)),
            opt_out_threshold=_setting(
                "INTELLIGENCE_OPT_OUT_THRESHOLD", meta.get("opt_out_threshold", 0.5)
            ),
            sentiment_model=sentiment_model,
        )

    def classify(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Signals]:
        """Signals for each text, in input order. Text without words (empty, numbers or
        punctuation only; emoji count as words, they are spelled out) is neutral and ``other``."""
        cleaned = [normalize(t) for t in texts]
        wordy = [i for i, t in enumerate(cleaned) if has_words(t)]
        results = [Signals(NEUTRAL, 0.0, OTHER, 1.0, self.model_version) for _ in range(len(texts))]
        if not wordy:
            return results
        kept = [cleaned[i] for i in wordy]
        features = self.encoder.encode(kept, layers=self.layers, batch_size=batch_size)
        if self.sentiment_model is not None:
            sentiment = self.sentiment_model.probabilities(kept, batch_size=batch_size)
            moods: Sequence[str] = SENTIMENTS
        else:
            sentiment = self.sentiment.probabilities(features, kept)
            moods = self.sentiment.labels
        intent = self.intent.probabilities(features, kept)
        pos, neg = moods.index("positive"), moods.index("negative")
        for row, index in enumerate(wordy):
            label, confidence = self._intent(intent[row])
            results[index] = Signals(
                sentiment=moods[int(np.argmax(sentiment[row]))],
                sentiment_score=round(float(sentiment[row, pos] - sentiment[row, neg]), 4),
                intent=label,
                intent_confidence=round(confidence, 4),
                model_version=self.model_version,
            )
        return results

    def _intent(self, probabilities: np.ndarray) -> tuple[str, float]:
        return decide_intent(
            self.intent.labels, probabilities, self.threshold, self.opt_out_threshold
        )


def decide_intent(
    labels: Sequence[str], probabilities: np.ndarray, threshold: float, opt_out_threshold: float
) -> tuple[str, float]:
    """The best intent that clears its bar: ``opt_out`` needs ``opt_out_threshold`` (it pauses
    marketing), else the runner-up is considered; below ``threshold`` the intent is ``other``."""
    ranked = np.argsort(-probabilities)
    best = int(ranked[0])
    if labels[best] == "opt_out" and probabilities[best] < opt_out_threshold:
        best = int(ranked[1])
    confidence = float(probabilities[best])
    if confidence < threshold:
        return OTHER, confidence
    return labels[best], confidence
