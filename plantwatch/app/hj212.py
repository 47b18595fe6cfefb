"""`plantwatch hj212 decode` and `plantwatch hj212 listen`: commissioning tools for the HJ 212 uplink
(docs/hj212.md). `listen` is a platform stand-in: it checks every packet, prints it, and answers
data packets that ask for it (CN 9014)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.app.lifecycle import stop_on_signals
from plantwatch.contract.hj212 import CN_DATA_ANSWER, FLAG_VERSION_2017, ST_PLATFORM
from plantwatch.hj212.errors import PacketError
from plantwatch.hj212.packet import Packet, Reader, decode, encode


def describe(packet: Packet) -> str:
    """The fields of a packet, one per line."""
    lines = [
        f"QN   {packet.qn}",
        f"ST   {packet.st}",
        f"CN   {packet.cn}",
        f"PW   {packet.pw}",
        f"MN   {packet.mn}",
    ]
    answer = "answer wanted" if packet.wants_answer else "no answer"
    version = "HJ 212-2017" if packet.flag >> 2 == 1 else f"version bits {packet.flag >> 2}"
    lines.append(f"Flag {packet.flag} ({version}, {answer})")
    if packet.pnum is not None:
        lines.append(f"PNUM {packet.pnum}  PNO {packet.pno}")
    for group in packet.cp:
        lines.append("CP   " + ", ".join(f"{k}={v}" for k, v in group))
    return "\n".join(lines)


def decode_command(args: argparse.Namespace) -> int:
    """Check one packet (length, CRC, fields) and print it; exit 1 on any error."""
    text = sys.stdin.read() if args.packet == "-" else args.packet
    raw = text.strip().encode("ascii", "replace")
    try:
        packet = decode(raw)
    except PacketError as exc:
        print(f"not a valid HJ 212 packet: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(describe(packet))
    return EXIT_OK


async def listen(host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until `stop`: print each packet with its peer and answer those with Flag A."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer_host, peer_port = writer.get_extra_info("peername")[:2]
        peer = f"{peer_host}:{peer_port}"
        print(f"{_now()} {peer} connected", flush=True)
        frames = Reader()
        try:
            await _serve_packets(reader, writer, frames, peer)
        finally:
            writer.close()
        print(f"{_now()} {peer} disconnected", flush=True)

    server = await asyncio.start_server(serve, host, port)
    print(f"listening on {host}:{port} (Ctrl-C stops)", flush=True)
    async with server:
        await stop.wait()


async def _serve_packets(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frames: Reader, peer: str
) -> None:
    """Until the station disconnects: each packet checked, printed, answered if it asks."""
    while data := await reader.read(65536):
        for raw in frames.feed(data):
            try:
                packet = decode(raw)
            except PacketError as exc:
                print(f"{_now()} {peer} BAD {exc}: {raw!r}", flush=True)
                continue
            cp = "; ".join(",".join(f"{k}={v}" for k, v in g) for g in packet.cp)
            print(
                f"{_now()} {peer} CN={packet.cn} QN={packet.qn} MN={packet.mn} Flag={packet.flag} {cp}",
                flush=True,
            )
            if packet.wants_answer:
                answer = Packet(
                    packet.qn, ST_PLATFORM, CN_DATA_ANSWER, packet.pw, packet.mn, FLAG_VERSION_2017
                )
                for part in encode(answer):
                    writer.write(part)
                await writer.drain()


def listen_command(args: argparse.Namespace) -> int:
    """A platform stand-in on `--host`:`--port`."""

    async def main() -> None:
        with stop_on_signals(asyncio.Event()) as stop:
            await listen(args.host, args.port, stop)

    asyncio.run(main())
    return EXIT_OK


def _now() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S")
