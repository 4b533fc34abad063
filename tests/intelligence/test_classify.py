"""The model's contract: ``classify(texts) -> list[Signals]``, offline, on any input."""

from __future__ import annotations

import os
import socket

import pytest

from intelligence import Signals, classifier, classify
from intelligence.labels import INTENTS, SENTIMENTS


@pytest.fixture(scope="module", autouse=True)
def no_network() -> object:
    """Any attempt to open a connection while the model loads or runs fails the test."""
    original = socket.socket.connect

    def refuse(self, address):  # type: ignore[no-untyped-def]
        raise AssertionError(f"the model tried to reach the network: {address}")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    classifier()  # load under the guard
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


def valid(signals: Signals) -> None:
    assert signals.sentiment in SENTIMENTS
    assert -1.0 <= signals.sentiment_score <= 1.0
    assert signals.intent in INTENTS
    assert 0.0 <= signals.intent_confidence <= 1.0
    assert signals.model_version.startswith("minilm-l6-heads-")


def test_offline_flags_are_set_for_the_suite():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_one_signal_per_text_in_input_order():
    texts = ["how much is the solar lamp?", "thank you so much!", "stop sending me messages"]
    batch = classify(texts)
    assert len(batch) == 3
    for signals in batch:
        valid(signals)
    # Batched results equal one-by-one results: the length-sorted batching restores order.
    assert [classify([t])[0].intent for t in texts] == [s.intent for s in batch]
    assert batch[0].intent == "pricing"
    assert batch[2].intent == "opt_out"


def test_edge_case_inputs_never_fail():
    texts = [
        "",
        "   ",
        "😡😡😡",
        "1*2*500",
        "12345",
        "x" * 10_000,
        "\u4f60\u597d\uff0c\u591a\u5c11\u94b1\uff1f",
        "كم السعر",
    ]
    results = classify(texts)
    assert len(results) == len(texts)
    for signals in results:
        valid(signals)
    assert results[0].intent == "other" and results[0].sentiment == "neutral"
    assert results[3].intent == "other"  # a USSD path is not a message
    assert results[2].sentiment == "negative"  # emoji carry sentiment


def test_sentiment_direction():
    good, bad = classify(["I love this lamp, thank you!", "terrible service, very angry"])
    assert good.sentiment == "positive" and good.sentiment_score > 0
    assert bad.sentiment == "negative" and bad.sentiment_score < 0


def test_low_confidence_falls_back_to_other():
    model = classifier()
    saved = model.threshold
    model.threshold = 1.01  # nothing is that sure
    try:
        assert {s.intent for s in classify(["how much is it", "I want to buy"])} == {"other"}
    finally:
        model.threshold = saved


def test_opt_out_needs_more_confidence_than_other_intents():
    model = classifier()
    text = ["stop sending me messages"]
    assert classify(text)[0].intent == "opt_out"
    saved = model.opt_out_threshold
    model.opt_out_threshold = 1.01
    try:
        fallback = classify(text)[0]
        assert fallback.intent != "opt_out"  # the runner-up, or other below the general bar
    finally:
        model.opt_out_threshold = saved


def test_words_the_encoder_does_not_know_still_read_right():
    pidgin, swahili = classify(
        ["abeg make una stop to dey send me message", "asanteni sana, taa ni nzuri sana"]
    )
    assert pidgin.intent == "opt_out"
    assert swahili.sentiment == "positive"


def test_the_int8_encoder_stays_close_to_float32():
    from intelligence.encoder import Encoder

    texts = ["how much is the solar lamp?", "abeg stop to dey send me message", "asante sana"]
    full = classifier().encoder.forward(texts)
    small = Encoder(quantize=True)
    assert small.quantized and small.fingerprint == classifier().encoder.fingerprint
    cosine = (full * small.forward(texts)).sum(axis=1)  # both unit length
    assert cosine.min() > 0.9  # measured 0.93-0.96; a broken model lands near 0
