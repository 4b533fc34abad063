"""What the model says about one message (no model code here: the CRM imports this freely)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signals:
    sentiment: str  # negative | neutral | positive
    sentiment_score: float  # P(positive) - P(negative), in [-1, 1]
    intent: str  # one of intelligence.labels.INTENTS; "other" below the confidence threshold
    intent_confidence: float  # calibrated probability of the best intent
    model_version: str
