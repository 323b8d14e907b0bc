"""An SMTP sink for the benchmarks: accepts every message on loopback and appends its Message-ID to a file,
one line per delivery (a duplicate delivery shows as a repeated line). Runs until SIGTERM.

    python bench/smtp_sink.py PORT FILE
"""

from __future__ import annotations

import signal
import sys
import threading
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Record:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        with self.lock, self.path.open("a") as out:
            out.write(f"{headers.get('Message-ID', '?')}\n")
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    controller = Controller(Record(path), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("ready", flush=True)
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
