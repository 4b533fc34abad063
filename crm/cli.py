"""The `crm` console command: Flask's CLI group around the app factory, plus our commands."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask.cli import FlaskGroup
from werkzeug.serving import run_simple

from crm.app import create_app
from crm.migrate import upgrade
from crm.runtime import Runtime, build_runtime
from crm.settings import Settings, SettingsError

if TYPE_CHECKING:
    from crm.demo import DemoCredentials


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=lambda: create_app(_settings()), add_default_commands=False)
def cli() -> None:
    """Conversational CRM on messaging channels."""


def main() -> None:
    cli(prog_name="crm")


# -- running -------------------------------------------------------------------------------


@cli.command("run", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000"
)
@click.option("--worker/--no-worker", default=True, help="Start one RQ worker alongside.")
@click.option("--demo/--no-demo", default=True, help="Seed demo data into an empty database.")
def run_command(host: str, port: int, worker: bool, demo: bool) -> None:
    """Development: migrate, seed demo data, serve the web app and run a worker."""
    from crm.demo import DemoError, is_empty, seed
    from crm.redis_conn import embedded_url

    settings = _settings()
    if not settings.redis_url:
        url = embedded_url(settings.instance_path)
        os.environ["REDIS_URL"] = url  # the worker process joins the same embedded server
        settings = settings.with_overrides(redis_url=url)
        click.echo(f"Embedded Redis: {url}")
    if settings.database_url.startswith("sqlite"):
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = build_runtime(settings)
    if demo:
        with runtime.session() as session:
            empty = is_empty(session)
        if empty:
            click.echo("Empty database: seeding the demo (a minute at most)...")
            try:
                creds = seed(runtime)
            except DemoError as exc:
                click.echo(f"Demo not seeded: {exc} (crm demo --reset starts over)", err=True)
                creds = None
            if creds:
                _show_demo_credentials(creds, settings)
    if not settings.twilio_configured:
        click.echo(
            "No Twilio credentials: outbound messages are recorded by the sandbox adapter; "
            "webhooks verify with the development auth token."
        )
    child = None
    if worker:
        child = subprocess.Popen([sys.executable, "-m", "crm.cli", "worker"], env=os.environ.copy())
    click.echo(f"Web: http://{host}:{port}  (API under /api/v1, health at /healthz)")
    try:
        run_simple(host, port, create_app(runtime=runtime), threaded=True)
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=15)


def _show_demo_credentials(creds: DemoCredentials, settings: Settings) -> None:
    """Print the demo's sign-in details once, and keep them in the instance folder."""
    path = settings.instance_path / "demo-credentials.txt"
    creds.write(path)
    click.echo(f"Demo data seeded in {creds.seconds:.0f} s. Sign in at /login as:")
    for role, email, name in creds.users:
        click.echo(f"  {role:<9} {email:<22} {name}")
    click.echo(f"  password  {creds.password}  (the same for all of them)")
    click.echo(f"  API token {creds.token}  (the admin's)")
    click.echo(f"Saved to {path} (readable by you only).")


@cli.command("demo", with_appcontext=False)
@click.option(
    "--reset",
    is_flag=True,
    help="Delete everything in the database first (refused in production).",
)
def demo_command(reset: bool) -> None:
    """Seed a realistic demo: Sunrise Solar's month of customers, deals and a campaign.

    Migrates first, like `crm run`. Goes only into an empty database (no users, no contacts);
    with --reset it empties the database first. Prints the sign-in details: four users (admin,
    marketer, two reps) sharing one generated password. Nothing is sent to any provider.
    """
    from rq import Worker

    from crm.demo import DemoError, is_empty, seed
    from crm.demo import reset as empty_database
    from crm.redis_conn import embedded_url

    settings = _settings()
    if settings.production:
        raise click.ClickException("crm demo is for development: CRM_ENV is production")
    if not settings.redis_url:
        settings = settings.with_overrides(redis_url=embedded_url(settings.instance_path))
    if settings.database_url.startswith("sqlite"):
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    runtime = build_runtime(settings)
    try:
        if Worker.count(connection=runtime.redis):
            # A running worker would take the demo's queued jobs and run them with its own
            # adapters: real sends to made-up numbers when provider credentials are set.
            raise click.ClickException(
                "stop the workers first (crm worker): the demo runs its jobs itself"
            )
        if reset:
            empty_database(runtime)
            click.echo("Database emptied.")
        with runtime.session() as session:
            if not is_empty(session):
                raise click.ClickException(
                    "the database already has users or contacts; the demo goes only into an "
                    "empty one (crm demo --reset empties it first)"
                )
        click.echo("Seeding the demo (the model reads every message; a minute at most)...")
        creds = seed(runtime)
        if creds is None:  # someone else seeded it meanwhile
            raise click.ClickException("the database is no longer empty; nothing seeded")
        _show_demo_credentials(creds, settings)
    except DemoError as exc:
        raise click.ClickException(f"demo failed: {exc} (crm demo --reset starts over)") from None
    finally:
        runtime.close()


@cli.command("worker", with_appcontext=False)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--queue", "queues", multiple=True, help="Queue to listen on (repeatable).")
def worker_command(burst: bool, queues: tuple[str, ...]) -> None:
    """Run an RQ worker on the app's queues, with the outbox sweeper."""
    from workers.worker import run_worker

    if not burst and (not queues or "enrichment" in queues):
        from intelligence import classifier

        classifier()  # load the model now, once, rather than on the first message
    run_worker(build_runtime(_settings()), queues=list(queues) or None, burst=burst)


# -- database --------------------------------------------------------------------------------


@cli.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade", with_appcontext=False)
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    settings = _settings()
    if settings.database_url.startswith("sqlite"):
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    click.echo("Database is up to date.")


# -- users and tokens ----------------------------------------------------------------------


@cli.group("users")
def users_group() -> None:
    """People who use the CRM."""


@users_group.command("create", with_appcontext=False)
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["rep", "marketer", "admin"]), required=True)
@click.option("--name", default="")
@click.option("--phone", default=None, help="The user's own phone, for notifications.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, role: str, name: str, phone: str | None, password_stdin: bool) -> None:
    """Create a user (the password is prompted for, never passed as an argument)."""
    from crm.users import UserError, create_user

    password = (
        sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("Password: ")
    )
    runtime = build_runtime(_settings())
    try:
        with runtime.session() as session:
            user = create_user(
                session=session, email=email, role=role, password=password, name=name, phone=phone
            )
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@cli.group("tokens")
def tokens_group() -> None:
    """API tokens."""


@tokens_group.command("create", with_appcontext=False)
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="api", show_default=True)
def tokens_create(email: str, name: str) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    from sqlalchemy import select

    from crm.models import User
    from crm.users import create_token

    runtime = build_runtime(_settings())
    with runtime.session() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        issued = create_token(session=session, user=user, name=name)
    click.echo(issued.token)


# -- contacts ----------------------------------------------------------------------------------


@cli.group("contacts")
def contacts_group() -> None:
    """Contacts."""


@contacts_group.command("import", with_appcontext=False)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected rows and reasons to this CSV.",
)
@click.option("--batch-size", default=1000, show_default=True)
def contacts_import(file: Path, rejects: Path | None, batch_size: int) -> None:
    """Import contacts from a CSV (name, phone, email, tags, more columns become attributes)."""
    from itertools import islice

    from tqdm import tqdm

    from crm.importer import (
        ImportReport,
        RowError,
        count_rows,
        import_rows,
        read_rows,
        write_rejects,
    )

    settings = _settings()
    runtime = build_runtime(settings)
    total = ImportReport()
    with file.open(newline="", encoding="utf-8-sig") as stream:
        try:
            rows = read_rows(stream)
            with tqdm(total=count_rows(file), unit="row", desc="Importing") as bar:
                while batch := list(islice(rows, batch_size)):
                    with runtime.session() as session:
                        report = import_rows(
                            session=session, rows=batch, default_region=settings.default_region
                        )
                    total.created += report.created
                    total.updated += report.updated
                    total.rejected += report.rejected
                    bar.update(len(batch))
        except RowError as exc:
            raise click.ClickException(str(exc)) from None
        except UnicodeDecodeError:
            raise click.ClickException("the file is not UTF-8 text") from None
    click.echo(
        f"Created {total.created}, merged into existing {total.updated}, "
        f"rejected {len(total.rejected)}."
    )
    for rejected in total.rejected[:20]:
        click.echo(f"  line {rejected.line}: {rejected.reason}")
    if len(total.rejected) > 20:
        click.echo(f"  ... and {len(total.rejected) - 20} more")
    if rejects is not None and total.rejected:
        write_rejects(total, rejects)
        click.echo(f"Rejected rows written to {rejects}.")


# -- campaigns ---------------------------------------------------------------------------------


@cli.group("campaigns")
def campaigns_group() -> None:
    """Launch and follow bulk campaigns."""


@campaigns_group.command("launch", with_appcontext=False)
@click.argument("campaign_id", type=int)
@click.option("--follow", is_flag=True, help="Show a progress bar until the campaign is done.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def campaigns_launch(campaign_id: int, follow: bool, interval: float) -> None:
    """Launch a campaign (workers send it); with --follow, watch it go out."""
    from crm.campaign_launch import launch
    from crm.campaigns import CampaignError
    from crm.models import Campaign

    runtime = build_runtime(_settings())
    try:
        with runtime.session() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise click.ClickException(f"no campaign {campaign_id}")
            launched = launch(session, campaign)
            summary = dict(campaign.summary)
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    excluded = ", ".join(f"{k} {v}" for k, v in summary["excluded"].items()) or "none"
    click.echo(
        f"Launched: {launched.recipients} recipients in {launched.jobs} jobs, "
        f"{summary['segments_total']} parts, about {summary['estimated_cost']} "
        f"{summary['currency']}; excluded: {excluded}."
    )
    if follow:
        _follow(runtime, campaign_id, launched.recipients, interval)


@campaigns_group.command("follow", with_appcontext=False)
@click.argument("campaign_id", type=int)
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def campaigns_follow(campaign_id: int, interval: float) -> None:
    """Watch a launched campaign go out, with a progress bar."""
    from crm.models import Campaign

    runtime = build_runtime(_settings())
    with runtime.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.launched_at is None:
            raise click.ClickException(f"no launched campaign {campaign_id}")
        total = int(campaign.summary.get("recipients", 0))
    _follow(runtime, campaign_id, total, interval)


def _follow(runtime: Runtime, campaign_id: int, total: int, interval: float) -> None:
    """Poll the campaign's progress into a progress bar until it is done, paused or cancelled."""
    import time

    from tqdm import tqdm

    from crm.campaign_launch import progress
    from crm.models import Campaign

    with tqdm(total=total, unit="msg", desc=f"Campaign {campaign_id}") as bar:
        while True:
            with runtime.session() as session:
                campaign = session.get_one(Campaign, campaign_id)
                counts = progress(session, campaign)
                status = campaign.status
            settled = counts["sent"] + counts["failed"] + counts["skipped"]
            bar.update(settled - bar.n)
            bar.set_postfix(
                sent=counts["sent"], failed=counts["failed"], delivered=counts["delivered"]
            )
            if status not in ("launching", "running"):
                break
            time.sleep(interval)  # polling a figure for a person, not synchronizing
    click.echo(f"Campaign {campaign_id} is {status}.")


# -- sequences -------------------------------------------------------------------------------


@cli.group("sequences")
def sequences_group() -> None:
    """Triggered multi-step sequences: list, inspect, load, pause, resume, archive."""


@sequences_group.command("list", with_appcontext=False)
@click.option(
    "--status",
    type=click.Choice(["draft", "active", "paused", "archived"]),
    help="Only sequences in this status.",
)
def sequences_list(status: str | None) -> None:
    """One line per sequence: id, status, trigger, live and total enrolments, name."""
    from sqlalchemy import func, select

    from crm.models import Sequence, SequenceEnrollment
    from crm.sequence_exits import LIVE

    runtime = build_runtime(_settings())
    with runtime.session() as session:
        query = select(Sequence).order_by(Sequence.id)
        if status:
            query = query.where(Sequence.status == status)
        sequences = list(session.scalars(query))
        counts: dict[int, dict[str, int]] = {}
        for sequence_id, state, count in session.execute(
            select(SequenceEnrollment.sequence_id, SequenceEnrollment.status, func.count())
            .where(SequenceEnrollment.sequence_id.in_([s.id for s in sequences]))
            .group_by(SequenceEnrollment.sequence_id, SequenceEnrollment.status)
        ):
            counts.setdefault(sequence_id, {})[state] = count
    if not sequences:
        click.echo("No sequences.")
        return
    click.echo(f"{'ID':>4}  {'STATUS':<8}  {'TRIGGER':<14}  {'LIVE':>6}  {'ENROLLED':>8}  NAME")
    for sequence in sequences:
        by_status = counts.get(sequence.id, {})
        live = sum(by_status.get(state, 0) for state in LIVE)
        click.echo(
            f"{sequence.id:>4}  {sequence.status:<8}  {sequence.trigger_type:<14}  "
            f"{live:>6}  {sum(by_status.values()):>8}  {sequence.name}"
        )


def _trigger_text(trigger: object) -> str:
    from crm.sequence_definition import Trigger

    assert isinstance(trigger, Trigger)
    if trigger.type == "date_attribute":
        at = f" at {trigger.at}" if trigger.at else ""
        return f"date_attribute {trigger.value} {trigger.offset_days:+d} days{at}"
    return f"{trigger.type} {trigger.value}"


def _step_text(step: object) -> str:
    """A step in a few words: what it does."""
    from crm.sequence_definition import Step

    assert isinstance(step, Step)
    if step.wait is not None:
        minutes = int(step.wait.duration.total_seconds()) // 60
        amounts = {"day": minutes // 1440, "hour": minutes // 60 % 24, "minute": minutes % 60}
        parts = [f"{n} {unit}{'s' if n > 1 else ''}" for unit, n in amounts.items() if n]
        if step.wait.at:
            parts.append(f"until {step.wait.at}")
        return "wait " + ", ".join(parts)
    if step.send is not None:
        text = step.send.body.source if step.send.body else f"template {step.send.content_sid}"
        text = " ".join(text.split())
        return f"send {step.send.channel}: {text[:60]}{'…' if len(text) > 60 else ''}"
    if step.branch is not None:
        branch = step.branch
        return f"branch if {branch.condition} {branch.value}: {branch.then} else {branch.otherwise}"
    if step.kind == "tag":
        changes = [f"+{t}" for t in step.add_tags] + [f"-{t}" for t in step.remove_tags]
        return "tag " + " ".join(changes)
    if step.kind == "stage":
        return f"stage to {step.stage}"
    if step.kind == "handoff":
        return f"handoff ({step.reason})"
    return "exit"


@sequences_group.command("show", with_appcontext=False)
@click.argument("sequence_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def sequences_show(sequence_id: int, as_json: bool) -> None:
    """A sequence's status, trigger and steps, with its results in total and per step."""
    from crm.models import Sequence
    from crm.sequence_results import results
    from crm.sequences import definition_of

    runtime = build_runtime(_settings())
    with runtime.session() as session:
        sequence = session.get(Sequence, sequence_id)
        if sequence is None:
            raise click.ClickException(f"no sequence {sequence_id}")
        definition = definition_of(sequence)
        figures = results(session, sequence)
        head = (sequence.id, sequence.name, sequence.status, sequence.version)
    if as_json:
        click.echo(json.dumps(figures, indent=2, ensure_ascii=False))
        return
    number, name, status, version = head
    exits = ", ".join(f"{k} {v}" for k, v in sorted(figures["exited_by_reason"].items()))
    revenue = ", ".join(
        f"{amounts['revenue']} {currency} ({amounts['deals']} deals)"
        for currency, amounts in sorted(figures["revenue"].items())
    )
    lines = [
        f"Sequence {number}: {name}",
        f"Status: {status} (version {version})",
        f"Trigger: {_trigger_text(definition.trigger)}",
        f"Exits on: {', '.join(sorted(definition.exit_on)) or 'opt-out only'}",
        f"Enrolled: {figures['enrolled']} (active {figures['active']}, completed "
        f"{figures['completed']}, exited {figures['exited']}{f': {exits}' if exits else ''})",
        f"Messages sent: {figures['messages_sent']}, delivered {figures['delivered']}, "
        f"replies {figures['replies']}, opted out {figures['opted_out']}, "
        f"handoffs {figures['handoffs']}",
        f"Revenue: {revenue or 'none'} (attribution {figures['attribution_days']} days)",
        "Steps:",
    ]
    texts = {step.id: _step_text(step) for step in definition.steps}
    for position, step in enumerate(figures["steps"], start=1):
        what = texts.get(step["id"], "removed by an edit")
        line = f"  {position}. {step['id']}: {what} (runs {step['runs']}"
        if "messages" in step:
            messages = step["messages"]
            line += (
                f"; sent {messages['sent']}, queued {messages['queued']}, "
                f"delivered {messages['delivered']}, replied {messages['replied']}"
            )
        lines.append(line + ")")
    click.echo("\n".join(lines))


@sequences_group.command("load", with_appcontext=False)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--activate", is_flag=True, help="Make it active at once (else a draft).")
def sequences_load(file: Path, activate: bool) -> None:
    """Create a sequence from a YAML file (as those in crm/config/sequences/)."""
    import yaml

    from crm.sequence_definition import DefinitionError
    from crm.sequences import create_sequence

    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{file.name} is not valid YAML: {exc}") from None
    runtime = build_runtime(_settings())
    try:
        with runtime.session() as session:
            sequence = create_sequence(session, raw, None, activate=activate)
            created = (sequence.id, sequence.name, sequence.status)
    except DefinitionError as exc:
        raise click.ClickException(f"{file.name}: {exc}") from None
    click.echo(f"Created sequence {created[0]} “{created[1]}” ({created[2]}).")


def _set_sequence_status(sequence_id: int, action: str) -> None:
    """The API's action (``crm.api.sequences.ACTIONS``): the same states allow it."""
    from crm.api.sequences import ACTIONS
    from crm.models import Sequence
    from crm.sequences import SequenceError, set_status

    sources, target = ACTIONS[action]
    runtime = build_runtime(_settings())
    try:
        with runtime.session() as session:
            sequence = session.get(Sequence, sequence_id, with_for_update=True)
            if sequence is None:
                raise click.ClickException(f"no sequence {sequence_id}")
            if sequence.status not in sources:
                raise SequenceError(
                    f"sequence {sequence_id} is {sequence.status}: it cannot {action}"
                )
            moved = set_status(session, sequence, target)
            status = sequence.status
    except SequenceError as exc:
        raise click.ClickException(str(exc)) from None
    done = {"pause": "paused", "resume": "resumed", "archive": "exited"}
    counted = f"; {moved} enrolments {done[action]}" if action in done else ""
    click.echo(f"Sequence {sequence_id} is {status}{counted}.")


@sequences_group.command("activate", with_appcontext=False)
@click.argument("sequence_id", type=int)
def sequences_activate(sequence_id: int) -> None:
    """Activate a draft: its trigger enrols contacts from now on."""
    _set_sequence_status(sequence_id, "activate")


@sequences_group.command("pause", with_appcontext=False)
@click.argument("sequence_id", type=int)
def sequences_pause(sequence_id: int) -> None:
    """Pause an active sequence: every enrolled contact holds where it is."""
    _set_sequence_status(sequence_id, "pause")


@sequences_group.command("resume", with_appcontext=False)
@click.argument("sequence_id", type=int)
def sequences_resume(sequence_id: int) -> None:
    """Resume a paused sequence."""
    _set_sequence_status(sequence_id, "resume")


@sequences_group.command("archive", with_appcontext=False)
@click.argument("sequence_id", type=int)
def sequences_archive(sequence_id: int) -> None:
    """Stop a sequence for good: its enrolled contacts exit; its results stay."""
    _set_sequence_status(sequence_id, "archive")


# -- outbox ------------------------------------------------------------------------------------


@cli.group("outbox")
def outbox_group() -> None:
    """The transactional outbox."""


@outbox_group.command("sweep", with_appcontext=False)
@click.option(
    "--grace", default=None, type=int, help="Seconds a row must be old (default: setting)."
)
def outbox_sweep(grace: int | None) -> None:
    """Enqueue outbox jobs that Redis missed (the worker does this every few seconds)."""
    from crm import outbox

    settings = _settings()
    runtime = build_runtime(settings)
    with runtime.session() as session:
        count = outbox.sweep(
            session=session,
            connection=runtime.redis,
            grace_seconds=settings.outbox_grace_seconds if grace is None else grace,
        )
    click.echo(json.dumps({"enqueued": count}))


if __name__ == "__main__":
    main()


# -- intelligence ----------------------------------------------------------------------------
# The model is imported inside the commands: the web process and every other command stay free
# of torch and transformers.


@cli.group("intelligence")
def intelligence_group() -> None:
    """The sentiment/intent model: classify, train, evaluate."""


@intelligence_group.command("classify", with_appcontext=False)
@click.argument("texts", nargs=-1, required=True)
def intelligence_classify(texts: tuple[str, ...]) -> None:
    """Print the signals of each TEXT as a JSON line."""
    import dataclasses

    from intelligence import classify

    for text, signals in zip(texts, classify(list(texts)), strict=True):
        click.echo(json.dumps({"text": text, **dataclasses.asdict(signals)}, ensure_ascii=False))


@intelligence_group.command("train", with_appcontext=False)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the heads (default: the package's intelligence/weights/).",
)
def intelligence_train(out: Path | None) -> None:
    """Rebuild the heads from the training data (fixed seed). Encodings are cached under the
    instance folder, so a retrain after a data change only encodes new texts."""
    from intelligence.training import WEIGHTS, train

    settings = _settings()
    meta = train(cache_dir=settings.instance_path / "intelligence-cache", out=out or WEIGHTS)
    click.echo(json.dumps(meta, indent=2))


@intelligence_group.command("eval", with_appcontext=False)
@click.option("--source", default=None, help="Only held-out examples from this source.")
def intelligence_eval(source: str | None) -> None:
    """Per-class precision/recall, macro recall and confusion matrices on the held-out split."""
    from intelligence import classify
    from intelligence.training import evaluate

    for report in evaluate(classify, only_source=source):
        for line in report.lines():
            click.echo(line)
