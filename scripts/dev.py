#!/usr/bin/env python3
"""The two commands of the quick start, in plain Python so they need nothing but Python 3.11.

    python3 scripts/dev.py run     # venv, install, migrate, superadmin, demo data, web + worker
    python3 scripts/dev.py test    # venv, dev extras, Node test tools, pytest (extra args go to pytest)
    python3 scripts/dev.py setup   # venv, dev extras and Node test tools only (CI uses it before linting)

`make run` and `make test` call these.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def say(message: str) -> None:
    print(f"\033[1m==> {message}\033[0m", flush=True)


def ensure_venv(requirements: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (this script runs on whatever python3 the machine has)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        say(f"Creating {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = [ROOT / "requirements.txt", ROOT / requirements]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / f".installed-{Path(requirements).stem}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"Installing {requirements}")
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "-r", ROOT / requirements], check=True)
    stamp.write_text(digest)


def ensure_node_tools() -> None:
    """The Node tools the tests use (Prism, for the contract tests), from package-lock.json. Without
    npm they are left out and the contract tests skip (CI requires them)."""
    lock = ROOT / "package-lock.json"
    if not lock.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        say("npm not found: the contract tests (Prism) will be skipped")
        return
    stamp = ROOT / "node_modules" / ".installed-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("Installing the Node test tools (npm ci)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True)
    stamp.write_text(digest)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, ROOT / "manage.py", *args], check=True, cwd=ROOT, env=env)


def run(args: list[str]) -> int:
    ensure_venv("requirements.txt")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Local development talks to local test servers; production leaves this off.
    env.setdefault("INTEGRATIONS_ALLOW_PRIVATE_URLS", "true")
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    # Campaign emails carry unsubscribe links to the hub's own address (here, this machine's).
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    say("Migrating the database")
    manage("migrate", "--no-input", env=env)
    manage("ensure_superadmin", env=env)
    if "--no-demo" not in args:
        say("Loading demo data (skip with --no-demo)")
        manage("seed_demo", env=env)
    say(f"Serving http://{host}:{port}/admin/ (superadmin) and /dashboard/ (clients); Ctrl-C stops both")
    # The autoreloader forks a child that outlives a signal sent to its parent; DEV_RELOAD=true
    # turns it on for people who want it and stop with Ctrl-C in a terminal.
    reload = [] if env.get("DEV_RELOAD", "").lower() in {"1", "true", "yes"} else ["--noreload"]
    processes = {
        "web": spawn("runserver", f"{host}:{port}", *reload, env=env),
        "worker": spawn("qcluster", env=env),
    }
    code = 0
    try:
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    say(f"The {name} process exited ({process.returncode}); stopping the rest")
                    code = process.returncode or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(processes.values())
    say("Stopped")
    return code


def _own_session() -> None:
    # Each child leads its own process group, so a terminal's Ctrl-C reaches only this script,
    # which then signals each child exactly once (django-q2 shuts down badly when signalled twice,
    # once by the terminal and once by us). SIGINT is reset because a shell without job control
    # starts background jobs with it ignored.
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, ROOT / "manage.py", *args], cwd=ROOT, env=env, preexec_fn=_own_session)


def stop(processes) -> None:
    """SIGINT to each child once (runserver quits; the worker finishes or requeues its task), then
    after a grace period SIGKILL to whatever is left of its process group."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 20
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test(args: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    ensure_node_tools()
    return subprocess.run([BIN / "pytest", *args], cwd=ROOT).returncode


def setup(args: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    ensure_node_tools()
    return 0


COMMANDS = {"run": run, "test": test, "setup": setup}


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
