"""Scripts on a Linux VM through Run Command: submitting and following runs (plain Python, no Airflow import).

:class:`RunCommands` is the Run Command half of :class:`~.azure_vm.AzureComputeClient` (mixed into
it): it sends the wrapper commands of :mod:`.azure_vm_script` (start, attach, cancel, forget)
through the client's ARM calls, retries while the VM runs another command (Azure allows one at a
time), and folds each command's report into the :class:`~.azure_vm_script.RunCommandOperation`,
which is plain JSON (``env`` is never kept in it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_amlpipe.compute.azure_vm_arm import AzureComputeError, ComputeTarget, VmBusyError, translate_error
from airflow_provider_amlpipe.compute.azure_vm_lro import VM, LroState
from airflow_provider_amlpipe.compute.azure_vm_script import (
    CANCELLED,
    ERROR,
    LOST,
    MAX_SCRIPT_BYTES,
    RunCommandOperation,
    RunCommandOutput,
    check_env,
    check_run_id,
    check_shell,
    check_timeout,
    new_nonce,
    parse_report,
    render_wrapper,
)
from airflow_provider_amlpipe.errors import ConfigurationError

if TYPE_CHECKING:
    from airflow_provider_amlpipe.compute.azure_vm_settings import AzureVmSettings

# The logger of the client these methods were split from: what users configured for it still applies.
log = logging.getLogger("airflow_provider_amlpipe.compute.azure_vm")


class RunCommands:
    """The Run Command methods of :class:`~.azure_vm.AzureComputeClient`, which provides what is declared here."""

    settings: AzureVmSettings
    polling_interval: float
    run_command_wait: float
    busy_timeout: float
    _sdk: Any

    if TYPE_CHECKING:  # the client's ARM calls, for the type checker only

        def target(
            self, *, vm_name: str | None = None, scale_set_name: str | None = None, resource_group: str | None = None
        ) -> ComputeTarget: ...

        def wait(
            self, op: RunCommandOperation, *, timeout: float | None = None, poll_interval: float | None = None
        ) -> RunCommandOperation: ...

        def _begin(self, action: str, target: ComputeTarget, call: Callable[..., Any]) -> LroState: ...

        def _poll_lro(self, state: LroState, want_result: bool) -> LroState: ...

    def begin_run_command(
        self,
        vm: str,
        script: str,
        *,
        run_id: str,
        env: dict[str, str] | None = None,
        shell: str = "/bin/sh",
        timeout_seconds: float | None = None,
        resource_group: str | None = None,
    ) -> RunCommandOperation:
        """Run ``script`` on Linux VM ``vm`` under ``run_id``, idempotently; the operation, to :meth:`poll`.

        The script runs detached on the VM with ``shell``, ``env`` as its environment, in a fresh
        working folder; it is stopped after ``timeout_seconds``. Submitting a ``run_id`` that the VM
        already has does not run the script again: the operation reattaches to that run (still
        running, or replays how it ended). Retries while the VM runs another command, for up to
        ``busy_timeout`` seconds. A VM that is not running is an error naming the fix.
        """
        check_run_id(run_id)
        env = check_env(env)
        check_shell(shell)
        limit = check_timeout(timeout_seconds)
        if not isinstance(script, str) or not script.strip():
            raise ConfigurationError("script", "empty script", "pass the shell script to run")
        if len(script.encode()) > MAX_SCRIPT_BYTES:
            raise ConfigurationError(
                "script",
                f"{len(script.encode())} bytes exceed the {MAX_SCRIPT_BYTES} Run Command can carry",
                "stage large code as a file (e.g. through Blob) and run a small script that fetches it",
            )
        target = self.target(vm_name=vm, resource_group=resource_group)
        op = RunCommandOperation(vm, target.resource_group, run_id)
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._submit(op, "start", script=script, env=env, shell=shell, timeout_seconds=limit)
                return op
            except VmBusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(min(max(self.polling_interval, 0.05), 30.0))

    def cancel_run_command(self, op: RunCommandOperation, *, timeout: float | None = None) -> RunCommandOperation:
        """Stop the run (its whole process tree) and mark it cancelled; returns the ended operation.

        Azure has no cancel for Run Command, and one command runs at a time: this waits for the
        command in flight (at most ``run_command_wait`` plus start-up), then sends a cancel command.
        A run that already ended keeps its outcome.
        """
        if op.done:
            return op
        deadline = time.monotonic() + (timeout if timeout is not None else self.busy_timeout)
        while op.lro is not None and not op.done:  # the command in flight must end first
            current = self._poll_lro(LroState.from_dict(op.lro), want_result=True)
            op.lro = current.to_dict()
            if current.done:
                self._take(op, current, resubmit=False)
                break
            if time.monotonic() > deadline:
                raise AzureComputeError(f"cancel of run {op.run_id!r} on VM {op.vm!r}: the VM stayed busy")
            time.sleep(poll_delay(current, min(self.polling_interval, 1.0)))
        if op.done:
            return op
        op.mode = "cancel"
        self._send_when_free(op, "cancel", deadline, f"cancel of run {op.run_id!r} on VM {op.vm!r}")
        return self.wait(
            op, timeout=max(1.0, deadline - time.monotonic()), poll_interval=min(self.polling_interval, 1.0)
        )

    def delete_run(
        self, vm: str, run_id: str, *, resource_group: str | None = None, timeout: float | None = None
    ) -> None:
        """Delete an ended run's folder on the VM (its script, exit code and logs).

        Afterwards the run id is unknown to the VM: submitting it again runs the script again. A run
        still running is not deleted (:class:`AzureComputeError`); cancel it first.
        """
        check_run_id(run_id)
        target = self.target(vm_name=vm, resource_group=resource_group)
        op = RunCommandOperation(vm, target.resource_group, run_id, mode="forget")
        deadline = time.monotonic() + (timeout if timeout is not None else self.busy_timeout)
        self._send_when_free(op, "forget", deadline, f"deleting run {run_id!r} on VM {vm!r}")
        current = LroState.from_dict(op.lro) if op.lro is not None else None
        while current is not None and not current.done:
            if time.monotonic() > deadline:
                raise AzureComputeError(f"deleting run {run_id!r} on VM {vm!r}: no answer in time")
            time.sleep(poll_delay(current, min(self.polling_interval, 1.0)))
            current = self._poll_lro(current, want_result=True)
        report = None if current is None else parse_report(current.result, op.nonce)
        if report is None or report.state == "running":
            state = "still running: cancel it first" if report is not None else "no report from the VM"
            raise AzureComputeError(f"run {run_id!r} on VM {vm!r} was not deleted ({state})")

    def run_command_output(self, op: RunCommandOperation) -> RunCommandOutput:
        """How the run ended: state, exit code, stdout and stderr tails (:class:`AzureComputeError` if running)."""
        if not op.done:
            raise AzureComputeError(f"run {op.run_id!r} on VM {op.vm!r} has not ended (state {op.state})")
        return RunCommandOutput(op.state, op.exit_code, op.stdout, op.stderr, op.error)

    def _poll_run(self, op: RunCommandOperation) -> RunCommandOperation:
        if op.done:
            return op
        if op.lro is None:
            self._submit_quietly(op, "cancel" if op.mode == "cancel" else "attach")
            return op
        current = self._poll_lro(LroState.from_dict(op.lro), want_result=True)
        op.lro = current.to_dict()
        if current.done:
            self._take(op, current, resubmit=True)
        return op

    def _take(self, op: RunCommandOperation, current: LroState, resubmit: bool) -> None:
        """A Run Command ended: read its report; if the run goes on, send the next attach command."""
        op.lro = None
        if not current.succeeded:
            # Preempted (a power operation) or failed: the next command finds out what became of the run.
            log.info("Run Command for run %r on VM %r ended %s", op.run_id, op.vm, current.describe())
        else:
            report = parse_report(current.result, op.nonce)
            if report is None:
                text = str(current.result)[-1500:]
                op.finish(ERROR, f"Run Command on VM {op.vm!r} gave no report for run {op.run_id!r}: {text}")
                return
            op.apply(report)
            if op.done:
                return
        if resubmit:
            self._submit_quietly(op, "cancel" if op.mode == "cancel" else "attach")

    def _send_when_free(self, op: RunCommandOperation, mode: str, deadline: float, doing: str) -> None:
        """Send a cancel / forget command, trying again while the VM runs another one, until ``deadline``."""
        while op.lro is None and not op.done:
            self._submit_quietly(op, mode)
            if op.lro is None and not op.done:
                if time.monotonic() > deadline:
                    raise AzureComputeError(f"{doing}: the VM stayed busy")
                time.sleep(min(self.polling_interval, 1.0))

    def _submit_quietly(self, op: RunCommandOperation, mode: str) -> None:
        """Send an attach / cancel command; a busy VM is tried again at the next poll."""
        try:
            self._submit(op, mode)
        except VmBusyError:
            return

    def _submit(
        self,
        op: RunCommandOperation,
        mode: str,
        *,
        script: str | None = None,
        env: dict[str, str] | None = None,
        shell: str = "/bin/sh",
        timeout_seconds: int = 0,
    ) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.compute import models

        nonce = new_nonce()
        lines = render_wrapper(
            mode,
            op.run_id,
            nonce,
            script=script,
            shell=shell,
            timeout_seconds=timeout_seconds,
            wait_seconds=self.run_command_wait,
        )
        command = models.RunCommandInput(
            command_id="RunShellScript",
            script=lines,
            parameters=[models.RunCommandInputParameter(name=k, value=v) for k, v in (env or {}).items()] or None,
        )
        target = ComputeTarget(VM, op.resource_group, op.vm)
        vms = self._sdk.virtual_machines
        try:
            state = self._begin(
                "run_command",
                target,
                lambda **kw: vms.begin_run_command(op.resource_group, op.vm, command, **kw),
            )
        except AzureComputeError as exc:
            if exc.status_code == 409 and exc.code == "Conflict":
                raise VmBusyError(str(exc), 409, exc.code) from None
            if exc.status_code == 409 and exc.code == "OperationNotAllowed":
                if mode == "start":
                    raise AzureComputeError(
                        f"run {op.run_id!r}: VM {op.vm!r} (resource group {op.resource_group!r}) is not running."
                        " Fix: start it first (AzureVMStartOperator as a setup task)",
                        409,
                        exc.code,
                    ) from None
                op.finish(LOST if mode != "cancel" else CANCELLED, f"VM {op.vm!r} is not running any more: {exc}")
                return
            raise
        except HttpResponseError as exc:  # pragma: no cover - translated by _errors
            raise translate_error(exc, "run command", target, self.settings) from None
        op.lro, op.nonce, op.mode = state.to_dict(), nonce, mode
        op.commands += 1


def poll_delay(op: LroState | RunCommandOperation, interval: float) -> float:
    """Seconds to sleep before the next poll: ARM's ``Retry-After`` when it sent one, else ``interval``."""
    current = op if isinstance(op, LroState) else op.current
    if current is not None and current.retry_after:
        return max(current.retry_after, 0.05)
    return max(interval, 0.05)
