"""A document for people that is mailed whole (the daily digest, the monthly report): its words in
each language, its pictures and its attachments, built by `reports/` and sent by the alert service."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    """A file sent with the document: its name, MIME type and bytes."""

    filename: str
    mime: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Edition:
    """The document in one language: subject, plain text (complete on its own), HTML whose images
    are `cid:<name>` references to `images`, and attachments."""

    subject: str
    text: str
    html: str
    images: dict[str, bytes] = field(default_factory=dict)  # name -> PNG
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    """One period's document: `kind` ("digest" or "report"), `period` ("2026-12-03", "2026-11"),
    one edition per language."""

    kind: str
    period: str
    editions: dict[str, Edition]  # "zh", "en"

    @property
    def key(self) -> str:
        """What identifies it in the notification log: `<kind>:<period>`; sent once per recipient."""
        return f"{self.kind}:{self.period}"
