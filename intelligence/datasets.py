"""Training and held-out data: public labelled sets from ``../shared/data`` and our own
customer messages (``intelligence/data/customer_messages.tsv``).

The held-out split is a function of the text alone (a hash of its normalized form), so a text
is held out in every run and never trained on, whichever source it came from.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from intelligence.labels import INTENTS, SENTIMENTS
from intelligence.text import normalize

OWN_DATA = Path(__file__).parent / "data"
HELD_OUT_PERCENT = 15
CALIBRATION_PERCENT = 10  # of what is not held out: fits the temperature, not the weights


def shared_data_dir() -> Path:
    configured = os.environ.get("INTELLIGENCE_DATA_DIR", "").strip()
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str


_HANDLES_AND_LINKS = re.compile(r"https?://\S+|www\.\S+|@\w+")
_NOT_WORDS = re.compile(r"[\W_]+")


def dedupe_key(text: str) -> str:
    """Texts equal up to case, punctuation, @handles and links are one text: TweetEval's
    tweets are SemEval's with handles masked and links dropped, and must not sit on both
    sides of the split."""
    key = _HANDLES_AND_LINKS.sub(" ", normalize(text).lower())
    return _NOT_WORDS.sub(" ", key).strip()


def bucket(text: str) -> int:
    """0-99, stable for a text: which split it belongs to."""
    digest = hashlib.sha256(dedupe_key(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100


def split(examples: list[Example]) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, calibration, held_out), duplicates (by normalized text) dropped."""
    seen: set[str] = set()
    train, calibration, held_out = [], [], []
    for example in examples:
        key = dedupe_key(example.text)
        if not key or key in seen:
            continue
        seen.add(key)
        b = bucket(example.text)
        if b < HELD_OUT_PERCENT:
            held_out.append(example)
        elif b < HELD_OUT_PERCENT + CALIBRATION_PERCENT:
            calibration.append(example)
        else:
            train.append(example)
    return train, calibration, held_out


def _tsv(path: Path, text: str, label: str) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield row[text], row[label]


def _unescape(text: str) -> str:
    """SemEval's files carry ``\\u002c``-style escapes."""
    if "\\u" not in text:
        return text
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return text


def sentiment_examples(data: Path | None = None) -> list[Example]:
    data = data or shared_data_dir()
    found: list[Example] = []
    for text, label in _tsv(data / "sentiment" / "semeval_2013_2016.tsv", "text", "label"):
        found.append(Example(_unescape(text), label, "semeval"))
    for text, label in _tsv(data / "sentiment" / "tweeteval_validation.tsv", "text", "label"):
        found.append(Example(text, label, "tweeteval"))
    for lang in ("pcm", "sw"):
        for part in ("train", "dev"):
            path = data / "sentiment" / f"afrisenti_{lang}_{part}.tsv"
            for text, label in _tsv(path, "tweet", "label"):
                found.append(Example(text, label, f"afrisenti_{lang}"))
    for text, _intent, sentiment in own_messages():
        found.append(Example(text, sentiment, "customer_messages"))
    return [e for e in found if e.label in SENTIMENTS]


def own_messages() -> Iterator[tuple[str, str, str]]:
    path = OWN_DATA / "customer_messages.tsv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield row["text"], row["intent"], row["sentiment"]


def intent_mapping() -> dict[str, dict[str, str | None]]:
    return yaml.safe_load((OWN_DATA / "intent_mapping.yaml").read_text(encoding="utf-8"))


def intent_examples(data: Path | None = None) -> list[Example]:
    data = data or shared_data_dir()
    mapping = intent_mapping()
    found: list[Example] = []
    with (data / "intent" / "banking77_train.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            label = mapping["banking77"].get(row["category"])
            if label:
                found.append(Example(row["text"], label, "banking77"))
    clinc = json.loads((data / "intent" / "clinc150_train_val.json").read_text(encoding="utf-8"))
    for part in ("train", "val", "oos_train", "oos_val"):
        for text, category in clinc[part]:
            label = mapping["clinc150"].get(category)
            if label:
                found.append(Example(text, label, "clinc150"))
    for text, intent, _sentiment in own_messages():
        found.append(Example(text, intent, "customer_messages"))
    return [e for e in found if e.label in INTENTS]
