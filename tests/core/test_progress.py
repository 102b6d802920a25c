"""Progress bars show on a terminal and stay out of logs and CI (no TTY)."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

PAE = str(Path(sys.executable).with_name("pae"))


def _generate(tmp_path: Path, stderr) -> subprocess.CompletedProcess:
    return subprocess.run([PAE, "generate", "--workspaces", "3", "--days", "40", "--seed", "1",
                           "--out", str(tmp_path / "gen")], stdout=subprocess.PIPE, stderr=stderr, text=True,
                          env={**os.environ, "COLUMNS": "120"}, timeout=300, check=True)


def test_no_tty_means_no_progress_output(tmp_path):
    out = _generate(tmp_path, subprocess.PIPE)
    assert out.stderr == "" and "generated" in out.stdout  # the final summary stays


def test_a_terminal_gets_a_progress_bar(tmp_path):
    leader, follower = pty.openpty()
    try:
        out = _generate(tmp_path, follower)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert b"generating workspaces" in drawn and "generated" in out.stdout
