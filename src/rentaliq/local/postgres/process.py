"""The OS side of the servers: the user they run as, files written for them, ports, and their processes.

PostgreSQL refuses to run as root, so when this process is root every server process (initdb, pg_ctl,
postgres) runs as the ``postgres`` system user, and every file the server reads is owned by it.  The
tools run with a clean environment, and a running server is recognised from ``postmaster.pid`` plus a
liveness probe, without a ``pg_ctl status`` subprocess.
"""

from __future__ import annotations

import os
import pwd
import random
import secrets
import socket
import stat
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from rentaliq.local.postgres.binaries import INSTALL_HINT
from rentaliq.local.postgres.ca import bundle_path
from rentaliq.local.postgres.model import ADMIN_USER, HOST, PASSFILE, PostgresEngineError

# Below Linux's default ephemeral range (32768-60999): a port picked there could be
# taken by some outgoing connection by the time a later process restarts the server.
PORT_RANGE = (20000, 29999)
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 60
_LOG_TAIL_LINES = 5


@dataclass(frozen=True)
class ServerUser:
    """The OS account the servers run as; ``switch`` means we are root and must drop to it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool


def resolve_server_user() -> ServerUser:
    """Ourselves when not root; otherwise the ``postgres`` system user, refused if missing or uid 0."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, (), entry.pw_dir, switch=False)
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresEngineError(
            "running as root, but PostgreSQL refuses to run as root and there is no 'postgres' "
            f"system user to run it as; {INSTALL_HINT.split(' or ')[0]} (creates the user) "
            "or run the local cloud as an ordinary user"
        ) from None
    if entry.pw_uid == 0:
        raise PostgresEngineError("the 'postgres' system user has uid 0; PostgreSQL refuses to run as root")
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir, switch=True)


def server_locale() -> str:
    """C.UTF-8 keeps byte-order collation (deterministic) while upper()/lower() still handle non-ASCII."""
    for candidate in ("/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8"):
        if Path(candidate).exists():
            return "C.UTF-8"
    return "C"


def one_line(text: str) -> str:
    """Tool output folded onto one line, for one-line error messages."""
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def log_tail(log: Path) -> str:
    """The last non-empty lines of a server log, on one line: the usual reason a start failed."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    tail = [line.strip() for line in lines if line.strip()][-_LOG_TAIL_LINES:]
    return " | ".join(tail) if tail else "(server log is empty)"


# --------------------------------------------------------------------------- ports


def port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(instance_id: str, requested: int | None, claimed: set[int]) -> int:
    """The requested port if free, else a random free one in PORT_RANGE not ``claimed`` by another instance."""
    if requested is not None:
        if requested in claimed:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: port {requested} is already used by another instance")
        if not port_bindable(requested):
            raise PostgresEngineError(f"postgres instance {instance_id!r}: port {requested} is already in use on {HOST}")
        return requested
    rng = random.SystemRandom()
    for _ in range(200):
        candidate = rng.randint(*PORT_RANGE)
        if candidate not in claimed and port_bindable(candidate):
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # crowded range: any free port
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- processes


def postmaster_pid(data_dir: Path) -> int | None:
    """pg_ctl status would cost a subprocess; this is the same check (pid file + liveness)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return None  # another user's process reused the pid: not our server
    with suppress(OSError):  # guard against pid reuse after a crash
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return pid


class ServerOS:
    """Files and processes on behalf of the server user, resolved lazily.

    Lazily, so that a local cloud without RDS instances works on machines without PostgreSQL.
    """

    def __init__(self) -> None:
        self._user: ServerUser | None = None

    @property
    def user(self) -> ServerUser:
        if self._user is None:
            self._user = resolve_server_user()
        return self._user

    def chown(self, path: Path) -> None:
        user = self.user
        if user.switch:
            os.chown(path, user.uid, user.gid)

    def write(self, path: Path, content: str | bytes, mode: int, *, server_owned: bool) -> None:
        """Atomic write; the file is created with its final mode, so secrets are never briefly readable."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)
            if server_owned and self.user.switch:
                os.fchown(fd, self.user.uid, self.user.gid)
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)

    def ensure_root_dir(self, root_dir: Path, instance_id: str) -> None:
        """Create root_dir's missing parents; widen only the ones we created, then check the server user gets in."""
        user = self.user
        missing: list[Path] = []
        probe = root_dir
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            if user.switch:
                os.chmod(directory, 0o755)  # only directories we created; never widen existing ones
        self.check_traversable(root_dir, instance_id)

    def check_traversable(self, path: Path, instance_id: str) -> None:
        """Fail early and clearly instead of letting initdb/postgres die with 'Permission denied'."""
        user = self.user
        if not user.switch:
            return
        groups = set(user.groups) | {user.gid}
        for directory in [*reversed(path.parents), path]:
            st = directory.stat()
            if st.st_uid == user.uid:
                ok = st.st_mode & stat.S_IXUSR
            elif st.st_gid in groups:
                ok = st.st_mode & stat.S_IXGRP
            else:
                ok = st.st_mode & stat.S_IXOTH
            if not ok:
                raise PostgresEngineError(
                    f"postgres instance {instance_id!r}: PostgreSQL runs as system user {user.name!r} "
                    "(it refuses to run as root) and cannot "
                    f"traverse {directory}; fix: `chmod o+x {directory}` or keep the local cloud state "
                    "outside it (e.g. under /tmp or /var/lib)"
                )

    def run(
        self,
        instance_id: str,
        what: str,
        argv: list[str],
        *,
        log: Path,
        timeout: float,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server user with a clean environment.

        Stray PG* variables (PGDATA, PGPORT, ...) must not redirect the tools,
        and the server should not inherit the local cloud's AWS credentials.
        """
        user = self.user
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": user.home,
            "USER": user.name,
            "LOGNAME": user.name,
            "LC_ALL": server_locale(),
            "TZ": "UTC",
        }
        if not user.switch and "LD_LIBRARY_PATH" in os.environ:  # custom RENTALIQ_PG_BIN builds
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        env.update(extra_env or {})
        # Handled in C by _posixsubprocess (unlike preexec_fn, safe with threads);
        # extra_groups drops root's supplementary groups.  None (not switching) is subprocess's default.
        uid, gid, extra_groups = (user.uid, user.gid, list(user.groups)) if user.switch else (None, None, None)
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=env,
                cwd="/",
                timeout=timeout,
                check=False,
                user=uid,
                group=gid,
                extra_groups=extra_groups,
            )
        except subprocess.TimeoutExpired:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: {what} timed out after {timeout:.0f}s; server log tail: {log_tail(log)}") from None
        except OSError as exc:
            raise PostgresEngineError(f"postgres instance {instance_id!r}: cannot run {argv[0]}: {exc}") from None
        if check and result.returncode != 0:
            raise PostgresEngineError(
                f"postgres instance {instance_id!r}: {what} failed (exit {result.returncode}): {one_line(result.stderr or result.stdout)[-500:]}"
            )
        return result


def _pg_ctl(server_os: ServerOS, pg_bin: Path, instance_id: str, inst: Path, action: str, options: list[str], wait_s: int) -> subprocess.CompletedProcess[str]:
    """``pg_ctl <action> -D <inst>/data <options> -w -t <wait_s> -s``, unchecked: the caller judges the outcome
    (with the log's tail); the subprocess itself gets 15 s more than pg_ctl's own wait."""
    command = [str(pg_bin / "pg_ctl"), action, "-D", str(inst / "data"), *options, "-w", "-t", str(wait_s), "-s"]
    return server_os.run(instance_id, action, command, log=inst / "server.log", timeout=wait_s + 15, check=False)


def pg_ctl_start(server_os: ServerOS, pg_bin: Path, instance_id: str, inst: Path, port: int) -> None:
    """``pg_ctl start -w``: returns once the server accepts connections, else fails with the log's tail."""
    log = inst / "server.log"
    result = _pg_ctl(server_os, pg_bin, instance_id, inst, "start", ["-l", str(log)], START_TIMEOUT_S)
    if result.returncode != 0:
        raise PostgresEngineError(
            f"postgres instance {instance_id!r}: server did not start on {HOST}:{port} (pg_ctl exit {result.returncode}); server log tail: {log_tail(log)}"
        )


def pg_ctl_stop(server_os: ServerOS, pg_bin: Path, instance_id: str, inst: Path, mode: str) -> None:
    """``pg_ctl stop -m <mode> -w``; a failure counts only if the postmaster is still there."""
    data, log = inst / "data", inst / "server.log"
    result = _pg_ctl(server_os, pg_bin, instance_id, inst, "stop", ["-m", mode], STOP_TIMEOUT_S)
    if result.returncode != 0 and postmaster_pid(data) is not None:
        why = one_line(result.stderr or result.stdout) or f"pg_ctl exit {result.returncode}"
        raise PostgresEngineError(f"postgres instance {instance_id!r}: server did not stop ({why}); server log tail: {log_tail(log)}")


def initdb(server_os: ServerOS, pg_bin: Path, instance_id: str, inst: Path, admin_password: str) -> None:
    """``initdb`` of ``<inst>/data`` with ``rdsadmin`` as its superuser; the password goes through a 0600 file."""
    pwfile = inst / ".initdb-pwfile"
    server_os.write(pwfile, admin_password.encode() + b"\n", 0o600, server_owned=True)
    try:
        server_os.run(
            instance_id,
            "initdb",
            [
                str(pg_bin / "initdb"),
                "-D",
                str(inst / "data"),
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                f"--locale={server_locale()}",
                "--no-sync",  # a crash during local create just means create again
                # 1 MiB WAL segments: the archiver switches segments every minute (RDS's five-minute RPO, bettered),
                # and a switched segment is archived whole, so 16 MiB ones would fill the disk of an idle laptop.
                "--wal-segsize=1",
                "--no-instructions",
            ],
            log=inst / "server.log",
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)


def pg_basebackup(server_os: ServerOS, pg_bin: Path, instance_id: str, inst: Path, port: int, dest: Path) -> None:
    """A physical copy of a running server into ``dest`` (created), with the WAL it needs streamed alongside.

    Authenticates as ``rdsadmin`` through the instance's passfile over TLS verified against the local CA; ``-c fast`` asks for an
    immediate checkpoint, as a snapshot is a point in time rather than a background job.
    """
    server_os.run(
        instance_id,
        "pg_basebackup",
        [
            str(pg_bin / "pg_basebackup"),
            "-d",
            f"host={HOST} port={port} user={ADMIN_USER} sslmode=verify-full sslrootcert={bundle_path(inst.parent)} application_name=rentaliq-backup",
            "-D",
            str(dest),
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",  # as initdb: the local cloud's durability is the page cache's, kill -9 loses nothing
            "--no-manifest",
        ],
        log=inst / "server.log",
        timeout=3600,
        extra_env={"PGPASSFILE": str(inst / PASSFILE)},
    )


def copy_tree(server_os: ServerOS, instance_id: str, source: Path, dest: Path, log: Path) -> None:
    """``cp -a`` of ``source``'s contents into the existing ``dest``, as the server user, so ownership and
    modes of a data directory stay what PostgreSQL requires."""
    server_os.run(instance_id, "copy", ["cp", "-a", "--reflink=auto", f"{source}/.", f"{dest}/"], log=log, timeout=3600)
