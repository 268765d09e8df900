"""A tracking server that does not answer is reported as such, after a few quick retries, not
after MLflow's default of minutes (a gate run waited 252 s; ``ragate history`` never returned
in 120 s). The settings are defaults: a user's own MLFLOW_HTTP_REQUEST_* variables win."""

from __future__ import annotations

import os
import socket

from _fixtures import ragate

from gates.tracking import HTTP_DEFAULTS


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_is_named_without_minutes_of_retries(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP_REQUEST")}
    env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{_closed_port()}"
    done = ragate("history", cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 1
    assert "cannot reach the tracking store http://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_defaults_are_few_quick_retries() -> None:
    assert int(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 3
    assert float(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]) <= 60
