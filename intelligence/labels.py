"""The labels the model speaks, shared by training, inference and the CRM."""

from __future__ import annotations

SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = (
    "purchase",
    "pricing",
    "support",
    "complaint",
    "cancel",
    "human",
    "opt_out",
    "smalltalk",
    "other",
)
OTHER = "other"
NEUTRAL = "neutral"
