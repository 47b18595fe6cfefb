"""`plantwatch report` and the scheduled documents: the monthly compliance report and the daily
digest, read back from InfluxDB and mailed through the alert service's notification log."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from plantwatch.alerts.service import AlertService
from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.config.secrets import SecretError
from plantwatch.config.targets import resolve_targets
from plantwatch.core.document import Document
from plantwatch.core.outage_log import OutageLog
from plantwatch.infra.errors import InfraError
from plantwatch.infra.influx.reader import InfluxReader
from plantwatch.reports.charts import draw
from plantwatch.reports.documents import document
from plantwatch.reports.errors import ReportError
from plantwatch.reports.model import Report
from plantwatch.reports.period import Period, day, month, previous_day, previous_month
from plantwatch.reports.queries import ReportReader
from plantwatch.reports.render_csv import render_csv
from plantwatch.reports.render_html import render_html
from plantwatch.reports.render_pdf import render_pdf
from plantwatch.reports.render_text import render_text
from plantwatch.reports.sections import sections

log = logging.getLogger(__name__)
CHECK_EVERY = 60.0  # seconds between looks at the calendar
RETRY_NS = 300 * 10**9  # a document that could not be made is tried again after this long
REPORT_CATCH_UP_DAYS = 3  # last month's report still goes out this many days into the month
EXTENSIONS = {"html": "html", "pdf": "pdf", "csv": "csv", "text": "txt"}


def make_report(
    plant: Plant, period: Period, now_ns: int, progress: Callable[[str], None] | None = None
) -> Report:
    """Read `period` from the plant's InfluxDB (up to `now_ns` while it is open)."""
    if plant.config.influx is None:
        raise ReportError(
            f"{plant.path}: influx: a report reads InfluxDB; this plant has no `influx` section"
        )
    reader = InfluxReader(plant.config.influx)
    try:
        targets = resolve_targets(plant.config.alerts, str(plant.path))
        return ReportReader(reader, plant, progress).report(targets, period, now_ns)
    except InfraError as exc:
        raise ReportError(str(exc)) from exc
    finally:
        reader.close()


def period_of(plant: Plant, kind: str, label: str) -> Period:
    """The month or day `label` in the plant's zone."""
    zone = ZoneInfo(plant.config.alerts.timezone)
    return month(label, zone) if kind == "report" else day(label, zone)


def build_document(plant: Plant, kind: str, label: str, now_ns: int) -> Document:
    """The digest of a day or the report of a month, both languages (blocking: a worker thread)."""
    report = make_report(plant, period_of(plant, kind, label), now_ns)
    return document(report, ZoneInfo(plant.config.alerts.timezone))


def due(now: datetime, digest_at: str, monthly: bool) -> list[tuple[str, str]]:
    """(kind, period) of the documents due at `now` (in the plant's zone): yesterday's digest once
    today's `digest_at` has passed; last month's report from the 1st at `digest_at` (a few days'
    catch-up for a service that was down)."""
    hour, minute = (int(part) for part in digest_at.split(":"))
    today_at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    out = []
    if now >= today_at:
        out.append(("digest", previous_day(now)))
    if monthly and now >= today_at.replace(day=1) and now.day <= REPORT_CATCH_UP_DAYS:
        out.append(("report", previous_month(now)))
    return out


async def send_documents(
    plant: Plant,
    service: AlertService,
    stop: asyncio.Event,
    *,
    clock: Callable[[], int] = time.time_ns,
    check_every: float = CHECK_EVERY,
) -> None:
    """Until `stop`: each document as it falls due, built in a worker thread and logged for every
    recipient that has not had it (idempotent across restarts: the notification log says)."""
    alerts = plant.config.alerts
    if alerts.digest_at is None or plant.config.influx is None:
        return
    zone = ZoneInfo(alerts.timezone)
    done: set[str] = set()
    tried: dict[str, int] = {}
    outage = OutageLog(log)
    while not stop.is_set():
        now_ns = clock()
        now = datetime.fromtimestamp(now_ns / 1e9, zone)
        for kind, label in due(now, alerts.digest_at, alerts.monthly_report):
            key = f"{kind}:{label}"
            if key in done or now_ns - tried.get(key, -RETRY_NS) < RETRY_NS:
                continue
            if service.published(key):
                done.add(key)
                continue
            tried[key] = now_ns
            try:
                made = await asyncio.to_thread(build_document, plant, kind, label, now_ns)
            except ReportError as exc:
                outage.failure("%s: cannot be made: %s; trying again in %d s", key, exc, RETRY_NS // 10**9)
                continue
            outage.recovered("documents: made again")
            logged = service.publish(made)
            done.add(key)
            log.info("%s: %d mail(s) logged for delivery", key, logged)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), check_every)


def command(args: argparse.Namespace) -> int:
    """Write a month's report (or a day's digest) as HTML, PDF, CSV or text; `--send` mails it."""
    path = Path(args.config)
    plant = load_plant_config(path)
    kind, label = ("report", args.month) if args.month else ("digest", args.day)
    if args.again and not args.send:
        print("--again goes with --send: it mails the report again to recipients who had it", file=sys.stderr)
        return EXIT_INVALID
    if args.send and not plant.config.alerts.recipients:
        print(f"{path}: alerts.recipients: nobody to send it to", file=sys.stderr)
        return EXIT_INVALID
    try:
        period = period_of(plant, kind, label)
        if args.send:
            return _send(plant, kind, label, again=args.again)
        now_ns = time.time_ns()
        report = make_report(plant, period, now_ns, progress=lambda what: print(what, file=sys.stderr))
        zone = ZoneInfo(plant.config.alerts.timezone)
        words = sections(report, args.lang, zone, kind)
        out = Path(
            args.out or f"plantwatch-{plant.config.plant.id}-{label}-{args.lang}.{EXTENSIONS[args.format]}"
        )
        if args.format == "csv":
            out.write_text("\ufeff" + render_csv(report, args.lang), encoding="utf-8")
        elif args.format == "text":
            out.write_text(render_text(words, args.lang), encoding="utf-8")
        else:
            charts = draw(report, zone)
            if args.format == "pdf":
                out.write_bytes(render_pdf(words, charts, report.generated_ns))
            else:
                out.write_text(render_html(words, lambda name: _data_uri(charts.get(name))), encoding="utf-8")
    except (ReportError, SecretError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK


def _send(plant: Plant, kind: str, label: str, *, again: bool) -> int:
    """Build the document, log it for its recipients (all of them with `again`), deliver now."""
    from plantwatch.alerts.setup import build_alert_service

    now_ns = time.time_ns()
    if period_of(plant, kind, label).end_ns > now_ns:  # a later, complete one would count as sent
        raise ReportError(f"{label} has not ended yet: a {kind} is mailed once its period is over")
    made = build_document(plant, kind, label, now_ns)
    service = build_alert_service(plant)
    try:
        logged = service.publish(made, again=again)
        asyncio.run(service.deliver())
        pending = len(service.store.notifications(state="pending"))
    finally:
        service.close()
    print(f"{made.key}: {logged} mail(s) logged; {pending} waiting for delivery", file=sys.stderr)
    return EXIT_OK


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()
