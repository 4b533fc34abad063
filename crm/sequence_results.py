"""What a sequence did and brought back, in total and per step.

Enrolments by status and exit reason come from ``sequence_enrollments``; each step's runs and
outcomes from ``sequence_step_runs``. A send step's messages are its campaign's recipients, so
its figures (sent, delivered, replies, opt-outs, handoffs within the attribution window,
revenue) are the campaign results (``crm.campaign_results``): the same rules as broadcasts.
Sequence revenue counts each won deal once, whichever of its steps touched it.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from crm.attribution import window
from crm.campaign_launch import state_counts
from crm.campaign_results import results as campaign_results
from crm.deals import load_pipeline
from crm.models import Deal, Sequence, SequenceEnrollment, SequenceStepRun
from crm.sequences import definition_of, step_campaigns

OUTCOMES_SHOWN = 5  # the most frequent outcomes listed per step


def enrollment_counts(session: Session, sequence_id: int) -> dict[str, Any]:
    by_status: Counter[str] = Counter()
    exited: Counter[str] = Counter()
    for status, reason, count in session.execute(
        select(SequenceEnrollment.status, SequenceEnrollment.exit_reason, func.count())
        .where(SequenceEnrollment.sequence_id == sequence_id)
        .group_by(SequenceEnrollment.status, SequenceEnrollment.exit_reason)
    ):
        by_status[status] += count
        if status == "exited":
            exited[reason or "unknown"] += count
    return {
        "enrolled": sum(by_status.values()),
        "active": by_status["active"] + by_status["paused"],
        "completed": by_status["completed"],
        "exited": sum(exited.values()),
        "exited_by_reason": dict(exited),
    }


def results(session: Session, sequence: Sequence) -> dict[str, Any]:
    definition = definition_of(sequence)
    campaigns = step_campaigns(session, sequence.id)
    runs: dict[str, Counter[str]] = {}
    for step_id, outcome, count in session.execute(
        select(SequenceStepRun.step_id, SequenceStepRun.outcome, func.count())
        .where(SequenceStepRun.sequence_id == sequence.id)
        .group_by(SequenceStepRun.step_id, SequenceStepRun.outcome)
    ):
        runs.setdefault(step_id, Counter())[_outcome_kind(outcome)] += count
    steps = []
    totals = Counter[str]()
    for step in definition.steps:
        counted = runs.pop(step.id, Counter())
        entry: dict[str, Any] = {
            "id": step.id,
            "kind": step.kind,
            "runs": sum(counted.values()),
            "outcomes": dict(counted.most_common(OUTCOMES_SHOWN)),
        }
        campaign = campaigns.get(step.id)
        if step.kind == "send" and campaign is not None:
            figures = campaign_results(session, campaign)
            states = state_counts(session, campaign)
            entry["campaign_id"] = campaign.id
            entry["messages"] = {
                "queued": states["pending"] + states["sending"],
                "sent": figures["sent"],
                "failed": states["failed"],
                "skipped": states["skipped"],
                "delivered": figures["delivered"],
                "replied": figures["replied"],
                "opted_out": figures["opted_out"],
                "reply_rate": figures["reply_rate"],
            }
            for key in ("sent", "delivered", "replied", "opted_out"):
                totals[key] += figures[key]
        if step.kind == "handoff":
            totals["handoffs"] += entry["runs"]
        steps.append(entry)
    removed = [  # steps an edit removed still have their history
        {"id": step_id, "kind": None, "runs": sum(c.values()), "outcomes": dict(c), "removed": True}
        for step_id, c in runs.items()
    ]
    return {
        **enrollment_counts(session, sequence.id),
        "messages_sent": totals["sent"],
        "delivered": totals["delivered"],
        "replies": totals["replied"],
        "opted_out": totals["opted_out"],
        "handoffs": totals["handoffs"],
        "revenue": _revenue(session, [c.id for c in campaigns.values()]),
        "attribution_days": window().days,
        "steps": steps + removed,
    }


def _outcome_kind(outcome: str) -> str:
    """Outcomes grouped for counting: a wait's ``until <time>`` is one kind."""
    if outcome.startswith("until "):
        return "waited"
    return outcome


def _revenue(session: Session, campaign_ids: list[int]) -> dict[str, dict[str, str | int]]:
    """Won deals whose first- or last-touch campaign is one of the sequence's, per currency."""
    if not campaign_ids:
        return {}
    won = sorted(load_pipeline().won)
    revenue: dict[str, dict[str, str | int]] = {}
    for currency, count, amount in session.execute(
        select(Deal.currency, func.count(), func.sum(Deal.amount))
        .where(
            Deal.stage.in_(won),
            or_(
                Deal.first_touch_campaign_id.in_(campaign_ids),
                Deal.last_touch_campaign_id.in_(campaign_ids),
            ),
        )
        .group_by(Deal.currency)
    ):
        revenue[currency] = {
            "deals": count,
            "revenue": str(Decimal(amount or 0).quantize(Decimal("0.01"))),
        }
    return revenue
