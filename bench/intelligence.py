"""Benchmark the model: the raw encoder pass, ``classify()``, and enrichment through RQ into
PostgreSQL, each in messages per second with its ratio to the raw pass.

1. raw: the packaged encoder's forward pass (tokenize, 6 layers, mean pooling) on batches of 64
   short customer messages in arrival order: the baseline.
2. classify: ``intelligence.classify`` on the same messages (normalization, length-sorted
   batches, both heads, calibration).
3. enrichment: the same messages stored as inbound SMS interactions with their outbox rows (as
   the webhook leaves them, not timed), then timed from the announcement to the last commit: the
   relay batches rows into RQ jobs, an in-process RQ worker classifies each batch and writes
   signals to the interactions and the contacts' rolling sentiment in PostgreSQL.

With ``INTELLIGENCE_QUANTIZE=1``, 2 and 3 run the int8 encoder; 1 stays the float32 pass.

Run from the repository root (DATABASE_URL / REDIS_URL as for bench/ussd.py; the Redis db is
flushed):

    python -m bench.intelligence --messages 2048
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import random
from pathlib import Path
from time import perf_counter

from sqlalchemy import create_engine, func, insert, select

from bench.webhooks import DEFAULT_REDIS_URL, bench_redis, database_url, reset
from crm import outbox
from crm.migrate import upgrade
from crm.models import Contact, Identity, Interaction, OutboxJob
from crm.models.base import utcnow
from crm.runtime import build_runtime
from crm.settings import Settings
from intelligence import classifier
from intelligence.encoder import Encoder
from workers.worker import relay_once, run_worker

MESSAGES = (
    Path(__file__).resolve().parent.parent / "intelligence" / "data" / "customer_messages.tsv"
)
BATCH = 64
CONTACTS = 500
TARGET_RATIO = 0.8


def short_messages(count: int, seed: int = 7) -> list[str]:
    """``count`` customer messages (our labelled set, shuffled, repeated as needed)."""
    with MESSAGES.open(encoding="utf-8", newline="") as handle:
        texts = [
            row["text"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]
    random.Random(seed).shuffle(texts)
    return [texts[i % len(texts)] for i in range(count)]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def raw_forward(texts: list[str]) -> float:
    """The float32 PyTorch pass, also when the classifier runs quantized (the baseline)."""
    encoder = classifier().encoder
    if encoder.quantized:
        encoder = Encoder(quantize=False)
    encoder.forward(texts[:BATCH])  # warm-up
    start = perf_counter()
    for i in range(0, len(texts), BATCH):
        encoder.forward(texts[i : i + BATCH])
    return rate(len(texts), perf_counter() - start)


def classify_rate(texts: list[str]) -> float:
    model = classifier()
    model.classify(texts[:BATCH])
    start = perf_counter()
    signals = model.classify(texts)
    elapsed = perf_counter() - start
    assert len(signals) == len(texts)
    return rate(len(texts), elapsed)


def enrichment_rate(texts: list[str], db_url: str, redis_url: str) -> tuple[float, int]:
    """Messages/s from announcement to the last enriched commit, and how many were enriched."""
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    runtime = build_runtime(Settings.from_env())
    engine = create_engine(db_url)
    reset(engine, bench_redis(redis_url))
    now = utcnow()
    with runtime.session() as session:
        contact_ids = list(
            session.execute(
                insert(Contact).returning(Contact.id),
                [
                    {"name": f"Bench {i}", "attributes": {}, "created_at": now}
                    for i in range(CONTACTS)
                ],
            ).scalars()
        )
        session.execute(
            insert(Identity),
            [
                {"contact_id": cid, "kind": "phone", "value": f"+23324{i:07d}", "created_at": now}
                for i, cid in enumerate(contact_ids)
            ],
        )
        interaction_ids = list(
            session.execute(
                insert(Interaction).returning(Interaction.id),
                [
                    {
                        "contact_id": contact_ids[i % CONTACTS],
                        "channel": "sms",
                        "direction": "inbound",
                        "body": text,
                        "provider": "twilio",
                        "provider_message_id": f"SMbench{i:08d}",
                        "meta": {},
                        "created_at": now,
                    }
                    for i, text in enumerate(texts)
                ],
            ).scalars()
        )
        outbox_ids = list(
            session.execute(
                insert(OutboxJob).returning(OutboxJob.id),
                [
                    {
                        "job": "enrich",
                        "payload": {"interaction_id": iid},
                        "created_at": now,
                        "attempts": 0,
                    }
                    for iid in interaction_ids
                ],
            ).scalars()
        )
    classifier()  # loaded already by the earlier parts, as in a running worker
    start = perf_counter()
    outbox.announce(runtime.redis, outbox_ids)
    while relay_once(runtime):
        pass
    run_worker(runtime, queues=["enrichment"], burst=True)
    elapsed = perf_counter() - start
    with runtime.session() as session:
        done = session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.enriched_at.is_not(None))
        )
    reset(engine, bench_redis(redis_url))
    return rate(len(texts), elapsed), int(done or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2048)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("rq").setLevel(logging.WARNING)
    db_url = database_url()
    redis_url = os.environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    upgrade(db_url)
    texts = short_messages(args.messages)
    import torch

    print(
        f"messages: {len(texts)} short customer messages, torch threads: {torch.get_num_threads()}"
    )
    raw = raw_forward(texts)
    print(f"raw encoder forward (batches of {BATCH}):   {raw:8.1f} msg/s  1.00x")
    ours = classify_rate(texts)
    print(f"classify():                          {ours:8.1f} msg/s  {ours / raw:.2f}x")
    enriched, done = enrichment_rate(texts, db_url, redis_url)
    print(
        f"enrichment via RQ into PostgreSQL:   {enriched:8.1f} msg/s  {enriched / raw:.2f}x"
        f"  ({done}/{len(texts)} enriched; target >= {TARGET_RATIO}x)"
    )


if __name__ == "__main__":
    main()
