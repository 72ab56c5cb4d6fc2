"""Scripts run on a Linux VM through Run Command, idempotently by run id (no Airflow import).

Azure's action Run Command (``RunShellScript``) has no idempotency key, allows one command at a
time per VM, keeps only the last 4096 bytes of each stream, reports no exit code and runs at most
90 minutes. So the script is not run *as* the command: the command runs a small wrapper
(:func:`render_wrapper`) that, for run id ``R``,

* ``start``: creates ``$HOME/.amlpipe/runs/R`` with ``mkdir`` (atomic: one winner). The winner
  writes the script there and launches it detached (``setsid``) in ``R/work``, its streams to
  ``R/stdout`` / ``R/stderr``, its exit code to ``R/exit_code`` at the end. A start whose folder
  exists launches nothing: it attaches. **Resubmitting a run id never runs the script twice.**
* ``attach``: waits up to ``wait_seconds`` for the run to end, then reports;
* ``cancel``: marks the run cancelled and stops its process group (TERM, then KILL);
* ``forget``: deletes the folder of a run that ended (a later start of that id runs again).

Each report is the tail of the script's stdout followed by one line ``AMLPIPE-RUN <nonce> …``
(state, exit code, stream sizes) and the tail of its stderr: :func:`parse_report` reads it back
from the command's output. The nonce is new for each submission, so nothing a script prints can
pass for a report. A script's environment (``env``) is sent once, as Run Command parameters (the
VM's agent sets them as environment variables), is inherited by the detached script and is never
written to the VM's disk nor kept in :class:`RunCommandOperation` (which travels as JSON).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_amlpipe.compute.azure_vm_lro import LroState
from airflow_provider_amlpipe.errors import ConfigurationError

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
CANCELLED = "cancelled"
LOST = "lost"  # the run's processes are gone without an exit code (VM restarted or deallocated)
ERROR = "error"  # the run could not be followed (Run Command refused, report unreadable)
FINAL_STATES = (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED, LOST, ERROR)

MAX_SCRIPT_BYTES = 192 * 1024  # Run Command accepts about 256 KB of script; the wrapper needs some
STDOUT_TAIL = 3000  # + the report line stays within the 4096 bytes Azure keeps of stdout
STDERR_TAIL = 4000
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHELL = re.compile(r"^/[A-Za-z0-9_./-]+$")
_REPORT = re.compile(
    r"^AMLPIPE-RUN (?P<nonce>[0-9a-f]+) state=(?P<state>[a-z_]+) exit_code=(?P<code>-?\d+|-)"
    r" stdout_bytes=(?P<out>\d+) stderr_bytes=(?P<err>\d+)$",
    re.MULTILINE,
)

# The detached runner: $1 run folder, $2 shell, $3 timeout seconds (0: none). It leads its own
# process group (setsid), so cancel and the timeout stop the script's whole tree. It traps TERM so
# it survives its group being signalled long enough to record the exit code; the trap is not
# inherited by the script (handlers reset on exec), ignoring would be.
_RUNNER = r"""d=$1; sh_=$2; limit=$3
trap 'stopping=1' TERM INT HUP
cd "$d/work" || exit 1
echo $$ > "$d/pgid.tmp" && mv "$d/pgid.tmp" "$d/pgid"
"$sh_" "$d/script" </dev/null >"$d/stdout" 2>"$d/stderr" &
child=$!
if [ "$limit" -gt 0 ]; then
  ( trap '' TERM; n=0
    while [ $n -lt "$limit" ]; do sleep 1; [ -e "$d/exit_code" ] || [ ! -d "$d" ] && exit 0; n=$((n+1)); done
    [ -e "$d/reason" ] || echo timed_out > "$d/reason"
    kill -TERM -$$ 2>/dev/null; sleep 10; [ -e "$d/exit_code" ] || kill -KILL -$$ 2>/dev/null ) &
  watchdog=$!
fi
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
[ -n "${watchdog:-}" ] && kill -KILL "$watchdog" 2>/dev/null
echo "$code" > "$d/exit_code.tmp" && mv "$d/exit_code.tmp" "$d/exit_code"
"""

# Reports on run folder $d: the stdout tail, the report line, the stderr tail (on stderr).
_REPORT_FN = r"""same_boot() {
  [ "$(cat "$d/boot_id" 2>/dev/null)" = "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" ]
}
report() {
  if [ -e "$d/exit_code" ]; then
    code=$(cat "$d/exit_code"); state=succeeded; [ "$code" = 0 ] || state=failed
    [ -e "$d/reason" ] && state=$(cat "$d/reason")
  elif [ -e "$d/pgid" ] && same_boot && kill -0 -"$(cat "$d/pgid")" 2>/dev/null; then
    code=-; state=running
  elif [ -e "$d/reason" ]; then
    code=-; state=$(cat "$d/reason")
  elif [ -e "$d/pgid" ] || [ -e "$d/started" ]; then
    code=-; state=lost
  else
    code=-; state=running
  fi
  out=0; err=0
  [ -e "$d/stdout" ] && out=$(wc -c < "$d/stdout" | tr -d ' ')
  [ -e "$d/stderr" ] && err=$(wc -c < "$d/stderr" | tr -d ' ')
  if [ "$state" != running ]; then
    [ -e "$d/stdout" ] && tail -c %(stdout_tail)d "$d/stdout"
    [ -e "$d/stderr" ] && tail -c %(stderr_tail)d "$d/stderr" >&2
  fi
  printf '\nAMLPIPE-RUN %%s state=%%s exit_code=%%s stdout_bytes=%%s stderr_bytes=%%s\n' \
    "$nonce" "$state" "$code" "$out" "$err"
}
"""


def check_run_id(run_id: object) -> str:
    """A run id names a folder on the VM: letters, digits, ``.``, ``_``, ``-``; at most 128 characters."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
        raise ConfigurationError(
            "run_id",
            f"{run_id!r} is not a usable run id",
            "use 1-128 letters, digits, '.', '_' or '-' starting with a letter or digit (e.g. a hash)",
        )
    return run_id


def check_env(env: object) -> dict[str, str]:
    """Environment variables for the script: ``{NAME: str}`` with shell-safe names."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise ConfigurationError("env", f"expected a dict of names to strings, got {type(env).__name__}", "pass env={}")
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name) or name.startswith("AMLPIPE_RUN_"):
            raise ConfigurationError(
                "env",
                f"{name!r} is not a usable environment variable name",
                "use letters, digits and '_' (not starting with a digit, nor with AMLPIPE_RUN_)",
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"env[{name!r}]", f"expected a string, got {type(value).__name__}", "pass str()")
    return dict(env)


def check_shell(shell: object) -> str:
    if not isinstance(shell, str) or not _SHELL.match(shell):
        raise ConfigurationError("shell", f"{shell!r} is not an absolute path to a shell", "pass e.g. '/bin/bash'")
    return shell


def check_timeout(timeout_seconds: object) -> int:
    if timeout_seconds is None:
        return 0
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)) or timeout_seconds <= 0:
        raise ConfigurationError(
            "timeout_seconds", f"expected a positive number of seconds, got {timeout_seconds!r}", "pass e.g. 3600"
        )
    return max(1, round(timeout_seconds))


def render_wrapper(
    mode: str,
    run_id: str,
    nonce: str,
    *,
    script: str | None = None,
    shell: str = "/bin/sh",
    timeout_seconds: int = 0,
    wait_seconds: float = 0.0,
    runs_dir: str = "${HOME:-/root}/.amlpipe/runs",
) -> list[str]:
    """The Run Command script (its lines) for ``mode`` ``start``, ``attach``, ``cancel`` or ``forget``.

    Only ``start`` carries the script; values are quoted (base64 for the script), ids checked.
    """
    check_run_id(run_id)
    check_shell(shell)
    if mode not in ("start", "attach", "cancel", "forget"):
        raise ValueError(f"unknown wrapper mode {mode!r}")
    wait_ticks = max(0, round(wait_seconds * 10))
    lines = [
        "set -u",
        f"nonce={nonce}",
        f'root="{runs_dir}"',
        f'd="$root/{run_id}"',
        _REPORT_FN % {"stdout_tail": STDOUT_TAIL, "stderr_tail": STDERR_TAIL},
        'mkdir -p "$root" || exit 0',
    ]
    if mode == "start":
        assert script is not None
        payload = base64.b64encode(script.encode()).decode()
        runner = base64.b64encode(_RUNNER.encode()).decode()
        lines += [
            'if mkdir "$d" 2>/dev/null; then',
            '  mkdir "$d/work"',
            f"  printf %s '{payload}' | base64 -d > \"$d/script\"",
            f"  printf %s '{runner}' | base64 -d > \"$d/runner.sh\"",
            '  date +%s > "$d/started"',
            # After a reboot an old process group id may belong to another process: the boot id tells.
            '  cat /proc/sys/kernel/random/boot_id > "$d/boot_id" 2>/dev/null',
            f'  setsid /bin/sh "$d/runner.sh" "$d" {shell} {int(timeout_seconds)} </dev/null >/dev/null 2>&1 &',
            '  n=0; while [ ! -e "$d/pgid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done',
            "fi",
        ]
    if mode == "cancel":
        lines += [
            'if [ -d "$d" ] && [ ! -e "$d/exit_code" ]; then',
            '  [ -e "$d/reason" ] || echo cancelled > "$d/reason"',
            '  if [ -e "$d/pgid" ]; then',
            '    g=$(cat "$d/pgid"); kill -TERM -"$g" 2>/dev/null',
            '    n=0; while kill -0 -"$g" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done',
            '    kill -KILL -"$g" 2>/dev/null',
            "  fi",
            "fi",
        ]
    if mode == "forget":
        lines += [
            'if [ -d "$d" ]; then',
            "  report > /dev/null 2>&1",
            '  [ "$state" = running ] || rm -rf "$d"',
            "fi",
        ]
    lines += [
        'if [ ! -d "$d" ]; then',
        "  printf '\\nAMLPIPE-RUN %s state=unknown exit_code=- stdout_bytes=0 stderr_bytes=0\\n' \"$nonce\"",
        "  exit 0",
        "fi",
        # Wait (in tenths of seconds) for the run to end, so one command usually sees a short script through.
        f'n=0; while [ ! -e "$d/exit_code" ] && [ $n -lt {wait_ticks} ]; do sleep 0.1; n=$((n+1)); done',
        "report",
        "exit 0",
    ]
    return lines


@dataclass(frozen=True)
class Report:
    """What one wrapper run said about a run."""

    state: str  # a state of FINAL_STATES, ``running``, or ``unknown`` (no such run on the VM)
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int


def parse_report(output: Any, nonce: str) -> Report | None:
    """Read the wrapper's report from a Run Command result (``{"value": [{"message": …}]}``).

    ``None`` when the output holds no report line with this nonce (the wrapper did not run to its end).
    """
    messages = []
    if isinstance(output, dict):
        for status in output.get("value") or []:
            if isinstance(status, dict) and status.get("message"):
                messages.append(str(status["message"]))
    text = "\n".join(messages)
    match = next((m for m in _REPORT.finditer(text) if m.group("nonce") == nonce), None)
    if match is None:
        return None
    before, after = text[: match.start()], text[match.end() :]
    stdout = before.split("[stdout]\n", 1)[1] if "[stdout]\n" in before else before
    stdout = stdout[:-1] if stdout.endswith("\n") else stdout  # the newline printed before the report
    stderr = after.split("\n[stderr]\n", 1)[1] if "\n[stderr]\n" in after else ""
    code = match.group("code")
    return Report(
        state=match.group("state"),
        exit_code=None if code == "-" else int(code),
        stdout=stdout,
        stderr=stderr,
        stdout_bytes=int(match.group("out")),
        stderr_bytes=int(match.group("err")),
    )


def new_nonce() -> str:
    return secrets.token_hex(8)


@dataclass
class RunCommandOperation:
    """A script run on a VM under ``run_id``, as plain JSON (no script, no environment values).

    ``state`` is ``running`` until one of :data:`FINAL_STATES`; ``lro`` is the Run Command being
    followed now (``None`` between commands, e.g. while the VM is busy with another one).
    ``stdout`` / ``stderr`` are the tails of the script's streams once it ended.
    """

    vm: str
    resource_group: str
    run_id: str
    state: str = RUNNING
    lro: dict[str, Any] | None = None
    nonce: str = ""
    mode: str = "start"
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    error: str | None = None
    commands: int = 0
    submitted_at: float = field(default_factory=time.time)
    ended_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def current(self) -> LroState | None:
        return None if self.lro is None else LroState.from_dict(self.lro)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; :meth:`from_dict` reverses it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunCommandOperation:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def finish(self, state: str, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.lro = None
        self.ended_at = time.time()

    def apply(self, report: Report) -> None:
        """Take a wrapper's report: the run ended (fields set) or still runs."""
        self.stdout_bytes, self.stderr_bytes = report.stdout_bytes, report.stderr_bytes
        if report.state == RUNNING:
            return
        if report.state == "unknown":
            self.finish(LOST, f"run {self.run_id!r} is not on VM {self.vm!r} (was the VM re-imaged or replaced?)")
            return
        self.exit_code, self.stdout, self.stderr = report.exit_code, report.stdout, report.stderr
        state = report.state if report.state in FINAL_STATES else ERROR
        error = None
        if state == LOST:
            error = f"run {self.run_id!r} on VM {self.vm!r} stopped without an exit code (VM restarted or deallocated?)"
        elif state == TIMED_OUT:
            error = f"run {self.run_id!r} on VM {self.vm!r} exceeded its timeout and was stopped"
        elif state == ERROR:
            error = f"unexpected run state {report.state!r}"
        self.finish(state, error)


@dataclass(frozen=True)
class RunCommandOutput:
    """How a script run ended: its state, exit code and the tails of its streams."""

    state: str
    exit_code: int | None
    stdout: str
    stderr: str
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED
