"""A --log-file given to a pysync server (``--rsync-path='pysync
--log-file=F'``) gets the lines a stock rsync server writes to its own:
the list step, each item, "created directory" with -v, messages, and the
closing byte counts.  Compared with rsync as the server, driven by a
stock rsync client (push and pull) and by a pysync client."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.roles import FAKE_RSH, PYSYNC, put

OLD = 1_500_000_000


def _lines(path, top):
    out = []
    for line in path.read_text().splitlines():
        text = line.split("] ", 1)[1]                    # after "date time [pid] "
        text = re.sub(r"\d+ bytes", "N bytes", text).replace(str(top), "TOP")
        out.append(text)
    return sorted(out)


@pytest.mark.parametrize("client", ["rsync", "pysync"])
@pytest.mark.parametrize("case", ["push", "push-v", "pull", "pull-missing"])
def test_server_log_file_as_rsync(tmp_path, client, case):
    got = {}
    for server in ("rsync", "pysync"):
        top = tmp_path / server
        put(top / "src", "f", b"1\n", OLD)
        put(top / "src", "d/g", b"2\n", OLD)
        log = top / "server.log"
        cmd = (["rsync"] if client == "rsync" else PYSYNC) + ["-a"] + (["-v"] if case == "push-v" else [])
        cmd += ["-e", FAKE_RSH, f"--rsync-path={server} --log-file={log}"]
        if case.startswith("push"):
            cmd += [f"{top / 'src'}/", f"localhost:{top / 'dst'}/"]
        else:
            cmd += [f"localhost:{top / 'src'}/"]
            if case == "pull-missing":
                cmd += [f"localhost:{top / 'missing'}"]
            cmd += [f"{top / 'dst'}/"]
        r = subprocess.run(cmd, capture_output=True, timeout=60)
        got[server] = (r.returncode, _lines(log, top))
    assert got["pysync"] == got["rsync"]
    assert any(line.endswith(" f") for line in got["pysync"][1])
