"""Email to regulators and plant staff: one message per interested recipient, sent by SMTP.

The notification log (the state store) holds each message as it will be sent, with a Message-ID
fixed when it was written; a resend after a crash is the same message. The outbox folder is a
copy people can read (`.eml`, any mail client): `<outbox>/pending/` waits for delivery (SMTP
down or not configured), `sent/` was delivered, `dead/` can never be (a refused recipient), with
the server's reason in its `X-Plantwatch-Dead-Letter` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from plantwatch.alerts.errors import DeliveryError
from plantwatch.alerts.lifecycle import Transition
from plantwatch.alerts.notifiers import Message, Notification
from plantwatch.alerts.notifiers.message import body, html_body, subject
from plantwatch.alerts.state import StateStore
from plantwatch.config.alerts import Recipient, SmtpConfig
from plantwatch.config.secrets import secret
from plantwatch.core.charts import Point, kpi_chart
from plantwatch.core.document import Document
from plantwatch.core.text import one_line

log = logging.getLogger(__name__)
# SMTP line endings; headers folded only past RFC 5322's 998 characters: Python's folding of a
# subject that mixes ASCII and encoded words doubles a space when read back ("55.0  mg/m³").
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)
CHART_SPEC = "application/vnd.plantwatch.chart+json"  # a chart to draw at sending (EmailNotifier.drawn)
_FILE = re.compile(r"^(\d{8})-")  # <notification id>-<device>-<event>.eml
_LEGACY = re.compile(r"^\d+-\d+-(?P<device>.+)-(?P<event>firing|resolved|repeat)\.eml$")


def wants(recipient: Recipient, plant: str, sector: str | None, severity: str, audience: str) -> bool:
    """Whether `recipient` gets an alert of this plant, sector and severity (empty filter: all),
    meant for `audience` (a regulator gets only what the plans judge; plant staff get everything)."""
    return (
        (recipient.role == "plant" or audience == "regulator")
        and (not recipient.plants or plant in recipient.plants)
        and (not recipient.sectors or sector in recipient.sectors)
        and (not recipient.severities or severity in recipient.severities)
    )


def classify(exc: smtplib.SMTPException | OSError) -> DeliveryError:
    """Whether a retry can help: a 5xx answer about this message or recipient never will; the
    network, 4xx answers and credentials (fixed by an operator) may."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return DeliveryError(f"recipient refused: {exc.recipients}", retryable=any(c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPNotSupportedError):
        code = getattr(exc, "smtp_code", 0)
        return DeliveryError(f"message refused: {code} {exc}", retryable=not 500 <= code < 600)
    return DeliveryError(str(exc) or type(exc).__name__, retryable=True)


class EmailNotifier:
    """Renders transitions per recipient; sends each over SMTP; keeps the outbox copy in step."""

    name = "email"
    silenceable = True

    def __init__(
        self,
        smtp: SmtpConfig | None,
        recipients: list[Recipient],
        outbox: Path,
        *,
        store: StateStore,
        plant: str,
        plant_names: Mapping[str, str],
        sectors: Mapping[str, str | None],
        timezone: str,
        dashboard_url: str | None,
        base_dir: Path,
    ) -> None:
        self.smtp, self.recipients = smtp, recipients
        self.store = store
        self.sectors = sectors  # device id -> sector, for the recipients' filters
        self.folders = {state: outbox / state for state in ("pending", "sent", "dead")}
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        self.pending, self.sent = self.folders["pending"], self.folders["sent"]
        self.plant, self.plant_names = plant, plant_names  # lang -> the plant's name
        self.zone = ZoneInfo(timezone)
        self.dashboard_url = dashboard_url
        self.base_dir = base_dir
        # Credentials now, not at the first mail: a missing variable stops the start (SecretError).
        self.user = secret(smtp.username_env) if smtp else None
        self.password = secret(smtp.password_env) if smtp else None
        self.delivered = 0
        self._reconcile()

    @property
    def can_send(self) -> bool:
        """Without an SMTP server, mail waits in the outbox."""
        return self.smtp is not None

    def render(self, transition: Transition) -> list[Message]:
        """One message per interested recipient, with its Message-ID fixed now; one chart for all."""
        target = transition.rule.target
        # a group's, a total's or a capacity's values have no device of their own: their target's sector
        sector = self.sectors.get(transition.alert.device) or (target.sector if target else None)
        wanted = [
            recipient
            for recipient in self.recipients
            if wants(recipient, self.plant, sector, transition.alert.severity, transition.rule.audience)
        ]
        chart = self.chart(transition) if wanted else None
        return [
            Message(recipient.email, self.compose(transition, recipient, chart).as_bytes(policy=MAIL_POLICY))
            for recipient in wanted
        ]

    def chart(self, transition: Transition) -> bytes | None:
        """What the chart shows (its values against the limit, the breach shaded), as JSON: it is
        drawn when the mail is sent, in the worker thread, never on the event loop (~0.1 s)."""
        rule, alert = transition.rule, transition.alert
        target = rule.target
        if target is None or not any(p.value is not None for p in transition.history):
            return None
        episode_start = alert.episode_start_ns or alert.since_ns
        episode_end = alert.window_end_ns if transition.event == "resolved" else transition.history[-1].end_ns
        spec = {
            "points": [[p.start_ns, p.end_ns, p.value] for p in transition.history],
            "limit": rule.limit,
            "lower_is_better": target.comparator in ("<=", "<"),
            "unit": target.unit,
            "shade": [episode_start, max(episode_end, episode_start)],
        }
        return json.dumps(spec).encode()

    def compose(
        self, transition: Transition, recipient: Recipient, chart: bytes | None = None
    ) -> EmailMessage:
        """The mail to one recipient, in the recipient's language: plain text, complete on its
        own, and an HTML alternative with the chart inline."""
        message = EmailMessage(policy=MAIL_POLICY)
        sender = self.smtp.from_ if self.smtp else f"plantwatch@{self.plant}.invalid"
        message["From"] = Address("plantwatch", addr_spec=sender)
        message["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
        message["Subject"] = subject(transition, self.plant, recipient.lang)
        detected = transition.detected_ns or time.time_ns()
        # in the body's zone, so header and body agree on the day
        message["Date"] = format_datetime(datetime.fromtimestamp(detected / 1e9, self.zone))
        message["Message-ID"] = make_msgid("plantwatch")
        message["X-Plantwatch-Rule"] = one_line(
            f"{transition.alert.device}/{transition.rule.id}/{transition.event}"
        )
        name = self.plant_names[recipient.lang]
        text = body(transition, self.plant, name, recipient.lang, self.zone, self.dashboard_url)
        message.set_content(text, charset="utf-8")
        cid = make_msgid("chart")[1:-1] if chart else None
        message.add_alternative(
            html_body(str(message["Subject"]), text, cid), subtype="html", charset="utf-8"
        )
        if chart and cid:
            html_part = message.get_payload()[1]  # type: ignore[index]
            assert isinstance(html_part, EmailMessage)
            html_part.add_related(chart, *CHART_SPEC.split("/"), cid=f"<{cid}>")
        return message

    def render_document(self, document: Document) -> list[Message]:
        """The digest or the monthly report, to every recipient of this plant, in each one's
        language; charts inline, attachments (PDF, CSV) attached."""
        return [
            Message(recipient.email, self.compose_document(document, recipient).as_bytes(policy=MAIL_POLICY))
            for recipient in self.recipients
            if not recipient.plants or self.plant in recipient.plants
        ]

    def compose_document(self, document: Document, recipient: Recipient) -> EmailMessage:
        """The document's mail to one recipient."""
        edition = document.editions[recipient.lang]
        message = EmailMessage(policy=MAIL_POLICY)
        sender = self.smtp.from_ if self.smtp else f"plantwatch@{self.plant}.invalid"
        message["From"] = Address("plantwatch", addr_spec=sender)
        message["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
        message["Subject"] = one_line(edition.subject)
        message["Date"] = format_datetime(datetime.fromtimestamp(time.time(), self.zone))
        message["Message-ID"] = make_msgid("plantwatch")
        message["X-Plantwatch-Document"] = one_line(document.key)
        message.set_content(edition.text, charset="utf-8")
        message.add_alternative(edition.html, subtype="html", charset="utf-8")
        html_part = message.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        for name, png in edition.images.items():
            html_part.add_related(png, "image", "png", cid=f"<{name}>", filename=f"{name}.png")
        for attachment in edition.attachments:
            maintype, subtype = attachment.mime.split("/")
            params = {"charset": "utf-8"} if maintype == "text" else None
            message.add_attachment(
                attachment.data, maintype, subtype, filename=attachment.filename, params=params
            )
        return message

    def drawn(self, message: EmailMessage) -> EmailMessage:
        """`message` with its chart drawn: the JSON part that says what to draw becomes the PNG
        (blocking, ~0.1 s: worker threads only). Drawing is deterministic, so a retry sends the
        same bytes."""
        for part in message.walk():
            if part.get_content_type() == CHART_SPEC:
                spec = json.loads(part.get_payload(decode=True))  # type: ignore[arg-type]
                png = kpi_chart(
                    [Point(*p) for p in spec["points"]],
                    limit=spec["limit"],
                    lower_is_better=spec["lower_is_better"],
                    unit=spec["unit"],
                    zone=self.zone,
                    shade=tuple(spec["shade"]),
                )
                cid = part["Content-ID"]
                assert isinstance(part, EmailMessage)
                part.set_content(png, "image", "png", cid=cid, filename="chart.png")
        return message

    async def send(self, notification: Notification) -> None:
        """SMTP in a worker thread."""
        await asyncio.to_thread(self._send, notification)

    def _send(self, notification: Notification) -> None:
        message = self.drawn(BytesParser(policy=MAIL_POLICY).parsebytes(notification.payload))
        copy = self._path("pending", notification)
        if copy.exists():  # the outbox shows the mail as it is sent, chart included
            temporary = copy.with_name(f".{copy.name}.tmp")
            temporary.write_bytes(message.as_bytes(policy=MAIL_POLICY))
            os.replace(temporary, copy)
        try:
            with self._connect() as client:
                client.send_message(message, to_addrs=[notification.destination])
        except (OSError, smtplib.SMTPException) as exc:
            raise classify(exc) from exc
        self.delivered += 1

    def _connect(self) -> smtplib.SMTP:
        assert self.smtp is not None
        smtp = self.smtp
        context = ssl.create_default_context()
        if smtp.ca_file:
            context.load_verify_locations(str(self.base_dir / smtp.ca_file))
        if smtp.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            if smtp.security == "starttls":
                client.starttls(context=context)
        if self.user is not None:
            client.login(self.user, self.password or "")
        return client

    # --- the outbox copy ---

    def recorded(self, notification: Notification) -> None:
        """The logged message as `<outbox>/pending/<id>-<device>-<event>.eml` (atomically)."""
        path = self._path("pending", notification)
        if not path.exists():
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(notification.payload)
            os.replace(temporary, path)

    def settled(self, notification: Notification) -> None:
        """Moved to `sent/`, or to `dead/` with the reason in a header."""
        source = self._path("pending", notification)
        target = self._path("sent" if notification.state == "sent" else "dead", notification)
        if notification.state == "dead":
            message = BytesParser(policy=MAIL_POLICY).parsebytes(notification.payload)
            message["X-Plantwatch-Dead-Letter"] = one_line(notification.error or "")
            target.write_bytes(message.as_bytes(policy=MAIL_POLICY))
            source.unlink(missing_ok=True)
        elif source.exists():
            os.replace(source, target)

    def _path(self, state: str, notification: Notification) -> Path:
        name = f"{notification.id:08d}-{notification.device}-{notification.event}.eml"
        return self.folders[state] / name

    def _reconcile(self) -> None:
        """After a restart: a copy for every pending message, settled ones moved out of pending/,
        and mail a version before the notification log left in pending/ taken into the log."""
        for path in sorted(self.pending.glob("*.eml")):
            found = _FILE.match(path.name)
            if found:
                notification = self.store.notification(int(found.group(1)))
                if notification is not None and notification.state != "pending":
                    self.settled(notification)
                continue
            legacy = _LEGACY.match(path.name)
            if legacy is None:
                continue
            message = BytesParser(policy=MAIL_POLICY).parsebytes(path.read_bytes())
            parts = str(message["X-Plantwatch-Rule"] or "").split("/")
            with self.store.transaction():
                notification_id = self.store.log_message(
                    self.name,
                    message["To"].addresses[0].addr_spec,
                    legacy["device"],
                    parts[1] if len(parts) == 3 else "",
                    legacy["event"],
                    path.read_bytes(),
                    path.stat().st_mtime_ns,
                )
            adopted = self.store.notification(notification_id)
            assert adopted is not None
            os.replace(path, self._path("pending", adopted))
        for notification in self.store.notifications(state="pending", notifier=self.name):
            self.recorded(notification)
