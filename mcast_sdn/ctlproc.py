"""Run the controller as a child process (for tests, the demo and tools).

It is started with the stock `ryu-manager` entry point of the venv, listening on
127.0.0.1 and free ports, with its log in a file; it is stopped by PID only.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ryu_manager_path() -> str:
    cand = Path(sys.executable).with_name("ryu-manager")
    return str(cand) if cand.exists() else "ryu-manager"


class ControllerProcess:
    def __init__(self, log_path: str | os.PathLike, config: dict | None = None, extra_args: list[str] | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.of_port = free_port()
        self.rest_port = free_port()
        self.log_path = Path(log_path)
        self.config = config
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    def start(self, wait: float = 20.0) -> "ControllerProcess":
        env = dict(os.environ)
        if self.config is not None:
            cfg_path = self.log_path.with_suffix(".config.json")
            cfg_path.write_text(json.dumps(self.config))
            env["MCAST_SDN_CONFIG"] = str(cfg_path)
        cmd = [
            ryu_manager_path(),
            "--ofp-listen-host", self.host,
            "--ofp-tcp-listen-port", str(self.of_port),
            "--wsapi-host", self.host,
            "--wsapi-port", str(self.rest_port),
            *self.extra_args,
            "mcast_sdn.app",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log_fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited with {self.proc.returncode}; log:\n{self.log_text()}")
            try:
                self.get("/mcast/v1/stats", timeout=0.5)
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise TimeoutError(f"controller REST not up after {wait}s; log:\n{self.log_text()}")

    def get(self, path: str, timeout: float = 5.0):
        with urllib.request.urlopen(self.base_url + path, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 5.0):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read().decode()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read().decode()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what we started
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
