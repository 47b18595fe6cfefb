"""Email to regulators: every message is first written to an outbox folder, then sent by SMTP.

`<outbox>/pending/*.eml` waits for delivery (SMTP down or not configured); a delivered message
moves to `<outbox>/sent/`. Nothing is lost across SMTP outages or restarts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from plantwatch.alerts.lifecycle import Transition
from plantwatch.alerts.notifiers.message import body, one_line, subject
from plantwatch.config.alerts import Recipient, SmtpConfig
from plantwatch.config.secrets import secret
from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)
_sequence = itertools.count()


def wants(recipient: Recipient, plant: str, sector: str | None, severity: str) -> bool:
    """Whether `recipient` gets alerts of this plant, sector and severity (empty filter: all)."""
    return (
        (not recipient.plants or plant in recipient.plants)
        and (not recipient.sectors or sector in recipient.sectors)
        and (not recipient.severities or severity in recipient.severities)
    )


class EmailNotifier:
    """Renders transitions per recipient into the outbox and delivers the outbox over SMTP."""

    name = "email"
    silenceable = True

    def __init__(
        self,
        smtp: SmtpConfig | None,
        recipients: list[Recipient],
        outbox: Path,
        *,
        plant: str,
        plant_name: str,
        sectors: Mapping[str, str | None],
        timezone: str,
        dashboard_url: str | None,
        base_dir: Path,
    ) -> None:
        self.smtp, self.recipients = smtp, recipients
        self.sectors = sectors  # device id -> sector, for the recipients' filters
        self.pending, self.sent = outbox / "pending", outbox / "sent"
        self.pending.mkdir(parents=True, exist_ok=True)
        self.sent.mkdir(parents=True, exist_ok=True)
        self.plant, self.plant_name = plant, plant_name
        self.zone = ZoneInfo(timezone)
        self.dashboard_url = dashboard_url
        self.base_dir = base_dir
        self.outage = OutageLog(log)
        self.delivered = 0

    def enqueue(self, transition: Transition) -> None:
        """Write one .eml per interested recipient into the outbox."""
        self.write_outbox(transition)

    def write_outbox(self, transition: Transition) -> list[Path]:
        """One .eml per interested recipient, complete or absent; the files written."""
        files = []
        sector = self.sectors.get(transition.alert.device)
        for recipient in self.recipients:
            if not wants(recipient, self.plant, sector, transition.alert.severity):
                continue
            message = self.render(transition, recipient)
            name = f"{time.time_ns()}-{next(_sequence):06d}-{transition.alert.device}-{transition.event}.eml"
            temporary = self.pending / f".{name}.tmp"
            temporary.write_bytes(message.as_bytes(policy=policy.SMTP))
            os.replace(temporary, self.pending / name)  # complete or absent, never half a message
            files.append(self.pending / name)
        return files

    def render(self, transition: Transition, recipient: Recipient) -> EmailMessage:
        message = EmailMessage(policy=policy.SMTP)
        sender = self.smtp.from_ if self.smtp else f"plantwatch@{self.plant}.invalid"
        message["From"] = Address("plantwatch", addr_spec=sender)
        message["To"] = Address(one_line(recipient.name), addr_spec=recipient.email)
        message["Subject"] = subject(transition, self.plant, recipient.lang)
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid("plantwatch")
        message["X-Plantwatch-Rule"] = one_line(
            f"{transition.alert.device}/{transition.rule.id}/{transition.event}"
        )
        text = body(transition, self.plant, self.plant_name, recipient.lang, self.zone, self.dashboard_url)
        message.set_content(text, charset="utf-8")
        return message

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
        user = secret(smtp.username_env)
        if user is not None:
            client.login(user, secret(smtp.password_env) or "")
        return client

    async def deliver(self) -> bool:
        """Send the outbox (SMTP in a worker thread); True when nothing waits for a retry."""
        await asyncio.to_thread(self.deliver_pending)
        return self.smtp is None or not any(self.pending.glob("*.eml"))

    def deliver_pending(self) -> int:
        """Send what waits in the outbox, oldest first; stop at the first failure (retried later).

        Blocking: run it in a worker thread. Returns the number delivered in this call.
        """
        files = sorted(self.pending.glob("*.eml"))
        if not files or self.smtp is None:
            return 0
        delivered = 0
        try:
            with self._connect() as client:
                for path in files:
                    message = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
                    client.send_message(message)
                    os.replace(path, self.sent / path.name)
                    delivered += 1
        except (OSError, smtplib.SMTPException) as exc:
            self.outage.failure(
                "SMTP %s:%d: %s; %d message(s) wait in %s",
                self.smtp.host,
                self.smtp.port,
                exc,
                len(files) - delivered,
                self.pending,
            )
        else:
            self.outage.recovered("SMTP %s:%d delivering again", self.smtp.host, self.smtp.port)
        self.delivered += delivered
        return delivered
