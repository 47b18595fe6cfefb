"""A real Mosquitto (Debian's `mosquitto`) for tests: own config, free port, restartable.

Optional password file (`users`) and TLS with a CA and server certificate the fixture makes
with `openssl`. Persistence is on, so a restart keeps sessions and queued QoS 1 messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.services.processes import free_port, listening
from tests.waiting import wait_until

# P-256 keys: made in a millisecond, where an RSA-2048 key costs a test a good part of a second.
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost, and a client certificate."""
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        *EC_KEY,
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=plantwatch test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "plantwatch-client")):
        run(
            "req",
            *EC_KEY,
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.pem",
            "-extfile",
            "san.cnf",
        )
    return {
        n: folder / f
        for n, f in [
            ("ca", "ca.pem"),
            ("server_cert", "server.pem"),
            ("server_key", "server.key"),
            ("client_cert", "client.pem"),
            ("client_key", "client.key"),
        ]
    }


class MosquittoServer:
    def __init__(
        self,
        root: Path,
        *,
        users: dict[str, str] | None = None,
        tls: bool = False,
        extra: list[str] | None = None,  # more config lines, e.g. a bridge to another broker
    ) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            raise RuntimeError("mosquitto not found: apt-get install mosquitto (.ci/run does)")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {root}/",
            "autosave_interval 1",
            f"log_dest file {root}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            lines.append(
                "user root"
            )  # else mosquitto drops to user `mosquitto`, who cannot read root's temp dir
        if users:
            passwd = root / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.certs: dict[str, Path] = {}
        if tls:
            self.certs = make_certificates(root / "certs")
            lines += [
                f"cafile {self.certs['ca']}",
                f"certfile {self.certs['server_cert']}",
                f"keyfile {self.certs['server_key']}",
                "require_certificate false",
            ]
        lines += extra or []
        self.config = root / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.certs else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15) -> None:
        proc = self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stderr=subprocess.PIPE)

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            return listening(self.port)

        wait_until(ready, timeout, f"mosquitto listening on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file first
            self.proc.wait(15)
            self.proc = None
