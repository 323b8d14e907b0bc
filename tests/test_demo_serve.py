"""`make demo` as a person runs it: it says how far the build is, prints where it serves and the logins once
the server answers, logs each request, and Ctrl+C (SIGINT) or SIGTERM ends it with exit status 0 — also
under make in a terminal, where Ctrl+C reaches make as well."""

from __future__ import annotations

import fcntl
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DABIAO = Path(sys.executable).parent / "dabiao"
SMALL = ["--firms", "50", "--until", "2022-02-20"]  # a few weeks of the campaign: built in seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return out


def wait_for(out: queue.Queue[str], seen: list[str], predicate: object, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = out.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if predicate(line):  # type: ignore[operator]
            return line
    raise AssertionError("not seen in time; output so far:\n" + "\n".join(seen))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_demo_says_where_it_serves_logs_requests_and_stops_with_status_0(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(DABIAO), "demo", *SMALL, "--folder", str(tmp_path / "demo"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out, seen = lines_of(proc), []
        ready = wait_for(out, seen, lambda line: line.startswith("已启动"))
        assert ready == f"已启动 http://127.0.0.1:{port} — Ctrl+C 停止"
        progress = [line for line in seen if line.lstrip().startswith("[") and "%]" in line]
        assert progress and "100%]" in progress[-1] and all("left" in line for line in progress)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=30) as page:
            assert page.status == 200
        wait_for(out, seen, lambda line: '"GET /login HTTP/1.1" 200' in line, timeout=30)  # the access log
        logins = {line.split()[0]: line for line in seen[seen.index(ready) + 1 :] if line.startswith("  ")}
        assert {"city", "center", "wujin", "gov-wujin", "expert01"} <= set(logins)  # one login per role
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0, "\n".join(seen)
        wait_for(out, seen, lambda line: line.startswith("已停止"), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(
    shutil.which("make") is None or not (ROOT / ".venv" / ".installed").exists() or Path(sys.prefix) != ROOT / ".venv",
    reason="needs make and the project's own .venv (made by `make setup`)",
)
def test_make_demo_in_a_terminal_ends_with_status_0_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    args = f"DEMO_ARGS={' '.join(SMALL)} --folder {tmp_path / 'demo'} --port {port}"
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # make leads the terminal's foreground, as a shell would start it

    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "demo", args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    shown = b""
    try:
        deadline = time.monotonic() + 240
        while "已启动".encode() not in shown and time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                shown += os.read(master, 65536)
        assert f"已启动 http://127.0.0.1:{port} — Ctrl+C 停止".encode() in shown, shown.decode(errors="replace")
        os.write(master, b"\x03")  # Ctrl+C: the terminal signals its foreground process group
        assert proc.wait(timeout=60) == 0
        while select.select([master], [], [], 0.5)[0]:
            try:
                shown += os.read(master, 65536)
            except OSError:
                break
        text = shown.decode(errors="replace")
        assert "已停止" in text and "Interrupt" not in text and "Terminated" not in text, text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
