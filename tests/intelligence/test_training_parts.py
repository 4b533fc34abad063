"""The parts of training that need no encoder: text normalization, the held-out split, heads,
the lexical model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from intelligence import lexical
from intelligence.datasets import HELD_OUT_PERCENT, Example, bucket, dedupe_key, split
from intelligence.heads import Head
from intelligence.text import has_words, normalize
from intelligence.training import report


def test_normalize_spells_out_emoji_and_bounds_length():
    assert normalize("love it 😍") == "love it smiling face with heart-eyes"
    assert normalize("  a \n\t b ") == "a b"
    assert len(normalize("x" * 50_000)) == 2000
    assert normalize(None) == ""


def test_texts_without_words():
    assert not has_words("1*2*500")
    assert not has_words("?!")
    assert has_words("ok")
    assert has_words("كم")


def test_the_held_out_split_depends_on_the_text_only():
    texts = [f"message number {i}" for i in range(2000)]
    examples = [Example(t, "other", "a") for t in texts]
    train, calibration, held_out = split(examples)
    again = split(list(reversed(examples)))
    assert {e.text for e in held_out} == {e.text for e in again[2]}
    assert not {e.text for e in held_out} & {e.text for e in train + calibration}
    assert abs(len(held_out) / 2000 - HELD_OUT_PERCENT / 100) < 0.03
    assert bucket("Hello") == bucket("  hello ")  # normalized, case-folded


def test_duplicates_are_dropped():
    train, calibration, held_out = split([Example("Same", "a", "x"), Example("same ", "b", "y")])
    assert len(train + calibration + held_out) == 1


def test_a_head_round_trips_and_temperature_softens(tmp_path: Path):
    head = Head(("a", "b"), np.array([[2.0, 0.0], [0.0, 2.0]]), np.zeros(2), temperature=1.0)
    head.save(tmp_path / "h.npz")
    loaded = Head.load(tmp_path / "h.npz")
    x = np.array([[1.0, 0.0]])
    assert np.allclose(loaded.probabilities(x), head.probabilities(x))
    warmer = Head(head.labels, head.weights, head.bias, temperature=4.0)
    assert warmer.probabilities(x)[0, 0] < head.probabilities(x)[0, 0]
    assert np.isclose(head.probabilities(x).sum(), 1.0)


def test_report_figures():
    r = report("t", ["a", "b"], ["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert r.accuracy == 0.75
    assert r.recall("a") == 0.5 and r.precision("b") == 2 / 3
    assert r.macro_recall == 0.75


def test_tweets_with_masked_handles_and_dropped_links_are_one_text():
    original = Example("@KwameM the new lamp is great! http://t.co/abc", "positive", "semeval")
    masked = Example("@user The new lamp is great!", "positive", "tweeteval")
    assert dedupe_key(original.text) == dedupe_key(masked.text)
    assert bucket(original.text) == bucket(masked.text)
    assert sum(len(part) for part in split([original, masked])) == 1


def test_a_hidden_layer_head_computes_what_pytorch_trained(tmp_path: Path):
    torch.manual_seed(0)
    layers = torch.nn.Sequential(
        torch.nn.Linear(8, 5), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(5, 3)
    )
    head = Head(
        ("a", "b", "c"),
        layers[2].weight.detach().numpy(),
        layers[2].bias.detach().numpy(),
        hidden_weights=layers[0].weight.detach().numpy(),
        hidden_bias=layers[0].bias.detach().numpy(),
    )
    head.save(tmp_path / "mlp.npz")
    loaded = Head.load(tmp_path / "mlp.npz")
    x = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    expected = layers(torch.tensor(x)).detach().numpy()
    assert np.allclose(loaded.logits(x), expected, atol=2e-2)  # float16 storage
    assert np.allclose(head.logits(x), expected, atol=1e-5)


def test_the_lexical_model_learns_words_the_encoder_does_not_know(tmp_path: Path):
    texts = ["wahala dey", "dis wahala too much", "asante sana", "nzuri sana asante"] * 3
    labels = np.array([0, 0, 1, 1] * 3)
    raw = lexical.counts(texts)
    vocabulary = lexical.Vocabulary.fit(raw)
    features = vocabulary.weighted(raw)
    assert features.shape == (12, len(vocabulary.kept))
    assert np.allclose(np.sqrt(features.multiply(features).sum(axis=1)), 1.0, atol=1e-5)
    model = LogisticRegression(C=10.0).fit(features, labels)
    # A binary logistic regression as two softmax rows: +-half its logit each.
    weights = np.vstack([-model.coef_[0], model.coef_[0]]) / 2
    bias = np.array([-model.intercept_[0], model.intercept_[0]]) / 2
    words = lexical.LexicalModel(("negative", "positive"), vocabulary, weights, bias)
    words.save(tmp_path / "lex.npz")
    loaded = lexical.LexicalModel.load(tmp_path / "lex.npz")
    probabilities = loaded.probabilities(["wahala", "asante"])
    assert probabilities[0, 0] > 0.5 and probabilities[1, 1] > 0.5
