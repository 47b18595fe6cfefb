"""A real SMTP server for tests (aiosmtpd) on a free loopback port: STARTTLS, AUTH, and an inbox."""

from __future__ import annotations

import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services.mosquitto import make_certificates
from tests.services.processes import free_port


class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused: set[str] = set()  # recipients answered 550, as for a mailbox that does not exist
        self.deferred: set[str] = set()  # recipients answered 451: try again later (a full mailbox)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable"
        if address in self.deferred:
            return "451 4.2.2 mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.SMTP))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """`start()`/`stop()` an SMTP server; with `users`, AUTH is required and only after STARTTLS."""

    def __init__(self, root: Path, *, users: dict[str, str] | None = None, starttls: bool = False) -> None:
        self.root = root
        self.users = users
        self.inbox = Inbox()
        self.port = free_port()
        self.certs = make_certificates(root / "certs") if starttls else {}
        self.controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users is not None:
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.certs:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certs["server_cert"], self.certs["server_key"])
            kwargs.update(tls_context=context, require_starttls=True)
        if self.users is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
