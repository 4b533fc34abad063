"""INTELLIGENCE_MODEL_DIR: a deployment's own local model, never fetched from a hub."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from intelligence.encoder import packaged_model_dir
from intelligence.labels import SENTIMENTS
from intelligence.model import Classifier
from intelligence.sentiment_model import SentimentModel

TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def tiny_config(**extra: object) -> BertConfig:
    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **extra,
    )


def with_tokenizer(folder: Path) -> Path:
    for name in TOKENIZER_FILES:
        shutil.copy(packaged_model_dir() / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def sentiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sequence-classification model with its own (upper-case) sentiment labels."""
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("twitter-sentiment")
    labels = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
    config = tiny_config(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    BertForSequenceClassification(config).save_pretrained(folder)
    return with_tokenizer(folder)


def test_a_sentiment_model_answers_sentiment_and_the_heads_intent(
    sentiment_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("INTELLIGENCE_MODEL_DIR", str(sentiment_dir))
    assert SentimentModel.fits(sentiment_dir)
    model = Classifier.load()
    assert model.model_version.endswith(f"+{sentiment_dir.name}")
    texts = ["how much is the solar lamp?", "stop sending me messages"]
    signals = model.classify(texts)
    expected = SentimentModel(sentiment_dir).probabilities(texts)
    for row, signal in zip(expected, signals, strict=True):
        assert signal.sentiment == SENTIMENTS[int(np.argmax(row))]
        assert signal.sentiment_score == pytest.approx(float(row[2] - row[0]), abs=1e-4)
    assert [s.intent for s in signals] == ["pricing", "opt_out"]  # the packaged heads


def test_an_encoder_the_heads_were_not_trained_on_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    torch.manual_seed(2)
    BertModel(tiny_config()).save_pretrained(tmp_path)
    with_tokenizer(tmp_path)
    monkeypatch.setenv("INTELLIGENCE_MODEL_DIR", str(tmp_path))
    assert not SentimentModel.fits(tmp_path)
    with pytest.raises(RuntimeError, match="INTELLIGENCE_WEIGHTS_DIR"):
        Classifier.load()
