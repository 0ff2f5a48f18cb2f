"""A throwaway JupyterLab server for the browser tests: its own port, no token, temporary
Jupyter config/data/runtime folders, cells never windowed, and nothing left running after it.

The kernelspec and the lab extensions (jupyterlab_widgets, anywidget) are still found: they
live under ``sys.prefix/share/jupyter``, which Jupyter searches whatever ``JUPYTER_DATA_DIR``
says (``check_jupyter_paths`` proves it before the server starts).
"""

from __future__ import annotations

import contextlib
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
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HELPERS = REPO / "tests" / "helpers"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
NO_UPDATE_CHECK = "jupyterlab.handlers.announcements.NeverCheckForUpdate"

# User settings the tests rely on: every cell rendered (no windowing, so off-screen widgets
# exist in the DOM), and no news/update toasts over the notebook.
USER_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jupyter_env(base: Path) -> dict[str, str]:
    """The server's environment: temporary Jupyter folders; the kernel (and the workers it
    starts) import this checkout's nbtrain and the test agents in tests/helpers."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        folder = base / name.split("_")[1].lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    old = env.get("PYTHONPATH")
    paths = [str(REPO / "src"), str(HELPERS), *([old] if old else [])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_TOKEN", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def check_jupyter_paths(env: dict[str, str]) -> None:
    """Fail early and clearly if the temporary folders would hide the kernelspec or the
    widget extensions."""
    code = "import json, jupyter_core.paths as p; print(json.dumps({'data': p.jupyter_path()}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    paths = json.loads(out.stdout)
    shared = str(Path(sys.prefix) / "share" / "jupyter")
    if shared not in paths["data"]:
        raise RuntimeError(f"{shared} is not on the Jupyter data path {paths['data']}")
    for needed in ("kernels/python3", "labextensions/@jupyter-widgets/jupyterlab-manager"):
        if not any((Path(d) / needed).exists() for d in paths["data"]):
            raise RuntimeError(f"no {needed} under any of {paths['data']}")


def write_user_settings(folder: Path) -> None:
    for plugin, content in USER_SETTINGS.items():
        package, name = plugin.split(":")
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content), encoding="utf-8")


class LabServer:
    """``jupyter lab`` on 127.0.0.1 serving ``root`` (also ``/notebooks/…`` for Notebook 7)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = jupyter_env(base)
        self.settings_dir = Path(self.env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings"
        self.workspaces_dir = Path(self.env["JUPYTER_CONFIG_DIR"]) / "lab" / "workspaces"
        self.log_path = base / "jupyter.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check_jupyter_paths(self.env)
        write_user_settings(self.settings_dir)
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.settings_dir}",
            f"--LabApp.workspaces_dir={self.workspaces_dir}",
            f"--LabApp.check_for_updates_class={NO_UPDATE_CHECK}",
            "--LabApp.extension_manager=readonly",
        ]
        if os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        with self.log_path.open("wb") as log:
            # Own session: teardown can signal the server and everything it started.
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status")
                break
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
        else:
            raise RuntimeError(
                f"jupyter lab did not answer in {START_TIMEOUT} s:\n{self.log_tail()}"
            )
        # The settings the tests rely on are the ones the front-end will get.
        for plugin, content in USER_SETTINGS.items():
            got = self.api("GET", f"/lab/api/settings/{plugin}")["settings"]
            wrong = {k: got.get(k) for k, v in content.items() if got.get(k) != v}
            if wrong:
                raise RuntimeError(f"JupyterLab did not take the user settings {plugin}: {wrong}")

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut every kernel down (their workers exit with them), between tests."""
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> list[str]:
        """Stop the server (SIGTERM, then SIGKILL to its session after a timeout); returns the
        command lines of any of its processes (kernels, workers) that had to be killed."""
        if self.proc is None:
            return []
        with contextlib.suppress(OSError, urllib.error.URLError):
            self.shutdown_kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        return self._kill_strays()

    def _kill_strays(self) -> list[str]:
        """Processes still mentioning our temporary folder (kernels use a connection file in
        its runtime folder, workers a config file under its root) are leftovers."""
        deadline = time.monotonic() + 5
        strays = own_processes(str(self.base))
        while strays and time.monotonic() < deadline:  # workers exit within 2 s of their kernel
            time.sleep(0.1)
            strays = own_processes(str(self.base))
        for pid, _ in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return [cmd for _, cmd in strays]


def own_processes(marker: str) -> list[tuple[int, str]]:
    """Live (non-zombie) processes whose command line mentions ``marker``."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            found.append((int(entry.name), cmd.strip()))
    return found
