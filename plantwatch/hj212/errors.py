"""The one exception base of `hj212/`."""

from __future__ import annotations


class Hj212Error(Exception):
    """An HJ 212 problem: a packet that is not one, a platform that does not answer."""


class PacketError(Hj212Error):
    """Bytes that are not a valid HJ 212 packet; the message says which part is wrong."""
