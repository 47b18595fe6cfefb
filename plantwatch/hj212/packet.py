"""HJ 212-2017 packets: `##` + the data segment's length (4 decimal digits) + the data segment
(`QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&`) + its CRC (4 upper-case hex
digits) + CRLF. The CP holds groups separated by `;`, each of `key=value` items separated by `,`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from plantwatch.contract.hj212 import FLAG_ANSWER, FLAG_SPLIT, FLAG_VERSION_2017, MAX_SEGMENT
from plantwatch.hj212.crc import crc16
from plantwatch.hj212.errors import PacketError

HEADER, TRAILER = b"##", b"\r\n"
FIELDS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")


@dataclass(frozen=True)
class Packet:
    """One packet's data segment, parsed. `cp` is the list of CP groups, each a list of
    (key, value) items in order."""

    qn: str = ""
    st: str = ""
    cn: str = ""
    pw: str = ""
    mn: str = ""
    flag: int = FLAG_VERSION_2017
    cp: list[list[tuple[str, str]]] = field(default_factory=list)
    pnum: int | None = None
    pno: int | None = None

    @property
    def wants_answer(self) -> bool:
        return bool(self.flag & FLAG_ANSWER)

    def value(self, key: str) -> str | None:
        """The first CP item called `key`."""
        return next((v for group in self.cp for k, v in group if k == key), None)

    def segment(self) -> str:
        """The data segment as sent."""
        parts = [f"{name}={value}" for name, value in self._header()]
        return (
            ";".join(parts) + ";CP=&&" + ";".join(",".join(f"{k}={v}" for k, v in g) for g in self.cp) + "&&"
        )

    def _header(self) -> list[tuple[str, str]]:
        items = [("QN", self.qn), ("ST", self.st), ("CN", self.cn), ("PW", self.pw), ("MN", self.mn)]
        items.append(("Flag", str(self.flag)))
        if self.pnum is not None and self.pno is not None:
            items += [("PNUM", str(self.pnum)), ("PNO", str(self.pno))]
        return [(k, v) for k, v in items if v != "" or k in ("QN", "Flag")]


def frame(segment: str) -> bytes:
    """A data segment framed for the wire."""
    data = segment.encode("ascii")
    if len(data) > 9999:
        raise PacketError(f"data segment of {len(data)} characters cannot be framed (4-digit length)")
    return HEADER + f"{len(data):04d}".encode() + data + f"{crc16(data):04X}".encode() + TRAILER


def encode(packet: Packet) -> list[bytes]:
    """The packet framed; split into PNUM packets when its data segment exceeds the standard's
    1,024 characters (each part carries whole CP groups, and the first group, e.g. DataTime)."""
    whole = packet.segment()
    if len(whole) <= MAX_SEGMENT or len(packet.cp) < 2:
        return [frame(whole)]
    head, groups = packet.cp[:1], packet.cp[1:]
    parts: list[list[list[tuple[str, str]]]] = [[]]
    probe = replace(packet, flag=packet.flag | FLAG_SPLIT, pnum=9999, pno=9999)
    for group in groups:
        trial = replace(probe, cp=head + parts[-1] + [group])
        if parts[-1] and len(trial.segment()) > MAX_SEGMENT:
            parts.append([])
        parts[-1].append(group)
    count = len(parts)
    return [
        frame(replace(packet, flag=packet.flag | FLAG_SPLIT, pnum=count, pno=i + 1, cp=head + part).segment())
        for i, part in enumerate(parts)
    ]


def decode(raw: bytes) -> Packet:
    """One framed packet (with or without its CRLF), checked: header, length, CRC, fields."""
    data = raw[:-2] if raw.endswith(TRAILER) else raw
    if not data.startswith(HEADER):
        raise PacketError("does not start with ##")
    length_text = data[2:6]
    if not length_text.isdigit() or len(length_text) != 4:
        raise PacketError(f"length field {length_text!r} is not 4 decimal digits")
    length = int(length_text)
    segment, check = data[6 : 6 + length], data[6 + length :]
    if len(segment) != length or len(check) != 4:
        actual = len(data) - 10
        raise PacketError(f"length field says {length} characters, the data segment has {actual}")
    expected = f"{crc16(segment):04X}".encode()
    if check.upper() != expected:
        raise PacketError(
            f"CRC {check.decode('ascii', 'replace')} does not match the data segment ({expected.decode()})"
        )
    return parse_segment(segment.decode("ascii", "replace"))


def parse_segment(segment: str) -> Packet:
    """A data segment's fields and CP."""
    head, marker, rest = segment.partition("CP=&&")
    if not marker or not rest.endswith("&&"):
        raise PacketError("no CP=&&…&& in the data segment")
    fields: dict[str, str] = {}
    for item in head.rstrip(";").split(";"):
        key, equals, value = item.partition("=")
        if not equals or key not in FIELDS:
            raise PacketError(f"unexpected item {item!r} before CP")
        fields[key] = value
    for required in ("QN", "CN", "Flag"):
        if required not in fields:
            raise PacketError(f"no {required}")
    try:
        flag = int(fields["Flag"])
        pnum = int(fields["PNUM"]) if "PNUM" in fields else None
        pno = int(fields["PNO"]) if "PNO" in fields else None
    except ValueError as exc:
        raise PacketError(f"Flag, PNUM and PNO are numbers: {exc}") from exc
    body = rest[:-2]
    cp = [
        [_item(item) for item in group.split(",") if item]
        for group in (body.split(";") if body else [])
        if group
    ]
    return Packet(
        fields["QN"], fields.get("ST", ""), fields["CN"], fields.get("PW", ""), fields.get("MN", ""),
        flag, cp, pnum, pno,
    )  # fmt: skip


def _item(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals:
        raise PacketError(f"CP item {text!r} is not key=value")
    return key, value


class Reader:
    """Splits a TCP byte stream into packets (`##` … CRLF); what is not a packet is skipped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The whole packets `data` completes (framed, CRLF included)."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            start = self._buffer.find(HEADER)
            if start < 0:
                self._buffer = self._buffer[-1:]
                return out
            end = self._buffer.find(TRAILER, start)
            if end < 0:
                self._buffer = self._buffer[start:]
                if len(self._buffer) > 2 * 9999:
                    self._buffer = b""
                return out
            out.append(self._buffer[start : end + 2])
            self._buffer = self._buffer[end + 2 :]
