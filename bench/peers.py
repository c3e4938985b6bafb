"""Per-peer virtualenvs for the side-by-side benchmark.

The peers pin conflicting redis client versions, so each one gets its own
virtualenv under ``bench/.venvs/<peer>``. Creation is idempotent: a venv whose
interpreter already imports the peer's modules is left alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENVS_DIR = BENCH_DIR / ".venvs"
REPO_ROOT = BENCH_DIR.parent
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Peer:
    """A library to compare against, and how to install it."""

    name: str
    requirements: tuple[str, ...]
    imports: tuple[str, ...]
    distributions: tuple[str, ...]


PEERS: dict[str, Peer] = {
    "arq": Peer("arq", ("arq", "uvloop"), ("arq", "uvloop"), ("arq", "redis", "uvloop")),
    # saq imports typing_extensions without declaring it as a dependency.
    "saq": Peer(
        "saq",
        ("saq[redis]", "uvloop", "typing_extensions"),
        ("saq", "redis", "uvloop"),
        ("saq", "redis", "uvloop"),
    ),
    "streaq": Peer(
        "streaq", ("streaq", "uvloop"), ("streaq", "uvloop"), ("streaq", "coredis", "uvloop")
    ),
    "taskiq": Peer(
        "taskiq",
        ("taskiq", "taskiq-redis", "uvloop"),
        ("taskiq", "taskiq_redis", "uvloop"),
        ("taskiq", "taskiq-redis", "redis", "uvloop"),
    ),
}


def venv_python(name: str) -> Path:
    """Return the interpreter path of a peer's virtualenv."""
    return VENVS_DIR / name / "bin" / "python"


def _imports_ok(python: Path, modules: tuple[str, ...]) -> bool:
    if not python.exists():
        return False
    code = "import " + ", ".join(modules)
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    return result.returncode == 0


def ensure_peer(peer: Peer, log: Path | None = None) -> tuple[Path, str | None]:
    """Create the peer's venv and install it unless it already imports.

    :param peer: the peer to set up.
    :param log: file that receives pip's output.
    :returns: the interpreter path and an error tail, or ``None`` on success.
    """
    python = venv_python(peer.name)
    if _imports_ok(python, peer.imports):
        return python, None
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(VENVS_DIR / peer.name)])
    steps.append([str(python), "-m", "pip", "install", "--quiet", *peer.requirements])
    for cmd in steps:
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return python, f"install timed out after {INSTALL_TIMEOUT_S} s: {' '.join(cmd)}"
        if log is not None:
            with log.open("a") as fh:
                fh.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            return python, "\n".join(tail) or f"exit status {result.returncode}"
    if not _imports_ok(python, peer.imports):
        return python, f"installed, but `import {', '.join(peer.imports)}` fails"
    return python, None


def ensure_aioworker(source: Path, label: str, log: Path | None = None) -> tuple[Path, str | None]:
    """Install aioworker from ``source`` into its own venv, runtime dependencies only.

    The project's own venv holds the dev extras (OpenTelemetry among them, which
    redis-py imports when present), so measuring there would inflate memory.

    :param source: a directory holding ``pyproject.toml`` and the ``aioworker`` package.
    :param label: what was installed (a commit); the same label is not installed twice.
    :returns: the interpreter path and an error tail, or ``None`` on success.
    """
    venv = VENVS_DIR / "aioworker"
    python = venv / "bin" / "python"
    marker = venv / "installed-from"
    if marker.exists() and marker.read_text() == label and _imports_ok(python, ("aioworker",)):
        return python, None
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    # no extras: only what `pip install aioworker` brings
    steps.append([str(python), "-m", "pip", "install", "--quiet", "--force-reinstall", str(source)])
    for cmd in steps:
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return python, f"install timed out after {INSTALL_TIMEOUT_S} s: {' '.join(cmd)}"
        if log is not None:
            with log.open("a") as fh:
                fh.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            return python, "\n".join(tail) or f"exit status {result.returncode}"
    marker.write_text(label)
    return python, None


def installed_versions(python: Path | str, distributions: tuple[str, ...]) -> dict[str, str]:
    """Return ``{distribution: version}`` as seen by ``python``."""
    code = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\n"
        "for d in sys.argv[1:]:\n"
        "    try:\n"
        "        out[d] = version(d)\n"
        "    except PackageNotFoundError:\n"
        "        out[d] = 'missing'\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [str(python), "-c", code, *distributions],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        return {}
    return dict(json.loads(result.stdout))


def main() -> None:
    """Set up every peer's venv and print the installed versions."""
    for peer in PEERS.values():
        python, error = ensure_peer(peer, VENVS_DIR / "install.log")
        if error:
            print(f"{peer.name}: FAILED\n{error}")
        else:
            print(f"{peer.name}: {installed_versions(python, peer.distributions)}")


if __name__ == "__main__":
    main()
