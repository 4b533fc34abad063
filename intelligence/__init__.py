"""Sentiment and intent for customer messages: ``from intelligence import classify``.

The model loads on first use, once per process. Importing this package is cheap (no torch):
the web process may use ``Signals`` and the labels, only workers call ``classify``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from intelligence.signals import Signals

if TYPE_CHECKING:
    from intelligence.model import Classifier

__all__ = ["Signals", "classifier", "classify"]

_lock = threading.Lock()
_loaded: Classifier | None = None


def classifier() -> Classifier:
    """The process's classifier, loaded on first use."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                from intelligence.model import Classifier

                _loaded = Classifier.load()
    return _loaded


def classify(texts: Sequence[str]) -> list[Signals]:
    """Sentiment and intent for each text, in order; batches internally."""
    return classifier().classify(texts)
