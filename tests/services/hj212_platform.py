"""An environmental platform stand-in for HJ 212-2017, written from the standard's text, not from
plantwatch's code: its own CRC (Appendix A), framing and CP parsing. It listens on loopback,
records every packet it receives, answers data packets that ask for it (CN 9014, same QN), and
can be told to go away, come back on the same port, corrupt its answers, or send requests."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass, field

from tests.services.processes import free_port


def crc(data: bytes) -> int:
    """HJ 212-2017 Appendix A: 0xFFFF; per byte shift right 8 then XOR; eight 0xA001 steps."""
    value = 0xFFFF
    for byte in data:
        value = (value >> 8) ^ byte
        for _ in range(8):
            low = value & 1
            value >>= 1
            if low:
                value ^= 0xA001
    return value


def frame(segment: str) -> bytes:
    body = segment.encode("ascii")
    return b"##" + b"%04d" % len(body) + body + b"%04X" % crc(body) + b"\r\n"


@dataclass
class Received:
    """A packet as the platform read it: the header fields and the CP items (groups kept)."""

    fields: dict[str, str]
    groups: list[dict[str, str]]
    raw: bytes

    @property
    def cn(self) -> str:
        return self.fields["CN"]

    def cp(self) -> dict[str, str]:
        return {k: v for group in self.groups for k, v in group.items()}


def parse(raw: bytes) -> Received:
    """Check length and CRC as the standard says; ValueError when either is wrong."""
    if not raw.startswith(b"##") or not raw.endswith(b"\r\n"):
        raise ValueError("not framed by ## and CRLF")
    length = int(raw[2:6])
    body, check = raw[6 : 6 + length], raw[6 + length : -2]
    if len(body) != length:
        raise ValueError("length mismatch")
    if int(check, 16) != crc(body):
        raise ValueError("CRC mismatch")
    text = body.decode("ascii")
    head, cp = text.split("CP=&&", 1)
    fields = dict(item.split("=", 1) for item in head.strip(";").split(";"))
    groups = [dict(i.split("=", 1) for i in g.split(",")) for g in cp[:-2].split(";") if g]
    return Received(fields, groups, raw)


@dataclass
class Platform:
    """The stand-in; `start()` and `stop()` keep the port, like a platform restarting."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    bad: list[bytes] = field(default_factory=list)
    corrupt_answers: int = 0  # the next N answers go out with a wrong CRC
    answering: bool = True
    _server: socketserver.ThreadingTCPServer | None = None
    _clients: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        platform = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                platform._clients.append(self.request)
                buffer = b""
                while True:
                    try:
                        data = self.request.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                    while b"\r\n" in buffer:
                        raw, buffer = buffer.split(b"\r\n", 1)
                        platform._on_packet(self.request, raw + b"\r\n")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()
        self._clients.clear()

    def _on_packet(self, client: socket.socket, raw: bytes) -> None:
        try:
            packet = parse(raw)
        except ValueError:
            self.bad.append(raw)
            return
        with self._lock:
            self.received.append(packet)
        if int(packet.fields["Flag"]) & 1 and self.answering:
            f = packet.fields
            answer = frame(
                f"QN={f['QN']};ST=91;CN=9014;PW={f.get('PW', '')};MN={f.get('MN', '')};Flag=4;CP=&&&&"
            )
            if self.corrupt_answers:
                self.corrupt_answers -= 1
                answer = answer[:-6] + b"0000\r\n"
            client.sendall(answer)

    def send(self, segment: str) -> None:
        """A packet to the connected station."""
        self._clients[-1].sendall(frame(segment))

    def data(self, cn: str) -> list[Received]:
        with self._lock:
            return [p for p in self.received if p.cn == cn]
