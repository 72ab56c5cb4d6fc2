"""``AzureBatchStepOperator``: AML's AzureBatchStep as an Airflow operator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_amlpipe.compute.batch_pool import check_pool_id
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.remote import LOCAL, RemoteStepOperator
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps import config
from airflow_provider_amlpipe.steps.azure_batch import AzureBatchStep, PoolSpec


class AzureBatchStepOperator(RemoteStepOperator):
    """Run an executable as a reusable, data-versioned step on an Azure Batch pool.

    :param executable: the program to run: a file of ``source_directory`` (uploaded with it), or a
        program the node has (``cmd``, ``python3``...).
    :param arguments: its arguments (templated); ``{inputs.NAME}`` / ``{outputs.NAME}`` become the
        paths of that input and output folder on the node (locally: the run's local paths).
    :param source_directory: the folder holding the executable and its files, all uploaded to the
        node's working directory (resource files); part of the fingerprint.
    :param compute: ``"local"`` (runs the executable on this worker with the same files and
        arguments) or an ``amlpipe_azure_batch`` connection id.
    :param pool_id: the pool the task runs on (required with a Batch connection).
    :param create_pool: create the pool when it does not exist (needs ``vm_size`` and an image).
    :param vm_size: e.g. ``"standard_d2s_v3"``; only for a pool the step creates.
    :param vm_image_urn: ``"publisher:offer:sku[:version]"`` (AML's ``urn:`` prefix allowed), or give
        ``vm_image_publisher`` / ``vm_image_offer`` / ``vm_image_sku``.
    :param node_agent_sku_id: the Batch node agent of that image; inferred for Ubuntu 20.04 / 22.04 /
        24.04 and Windows Server images.
    :param target_compute_nodes: dedicated nodes of a created pool.
    :param delete_batch_job_after_finish: delete the Batch job when the step ends (default true).
    :param delete_batch_pool_after_finish: delete the pool when the step ends, also after failure or kill.
    :param is_positive_exit_code_failure: a positive exit code fails the step (default true).
    :param run_task_as_admin: run the task as an elevated auto-user.
    :param deferrable: wait in the triggerer (default Airflow's ``[operators] default_deferrable``).

    Outputs are the folders ``{outputs.NAME}``: what the executable writes there comes back and is
    committed as a version. See :class:`AmlStepOperator` for ``inputs``, ``outputs``, ``datastore``.
    """

    template_fields: Sequence[str] = (*RemoteStepOperator.template_fields, "arguments")
    remote_kind = "Azure Batch"
    ui_color = "#e3f0d8"

    def __init__(
        self,
        *,
        executable: str,
        arguments: Sequence[Any] | None = None,
        source_directory: str | None = None,
        compute: str = LOCAL,
        pool_id: str | None = None,
        create_pool: bool = False,
        vm_size: str | None = None,
        vm_image_urn: str | None = None,
        vm_image_publisher: str | None = None,
        vm_image_offer: str | None = None,
        vm_image_sku: str | None = None,
        node_agent_sku_id: str | None = None,
        target_compute_nodes: int = 1,
        delete_batch_job_after_finish: bool = True,
        delete_batch_pool_after_finish: bool = False,
        is_positive_exit_code_failure: bool = True,
        run_task_as_admin: bool = False,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(compute=compute, inputs=inputs, outputs=outputs, **kwargs)
        if not isinstance(executable, str) or not executable.strip():
            raise ConfigurationError(
                "executable", f"expected a program name, got {executable!r}", "name the program, such as 'copy.sh'"
            )
        self.executable = executable.strip()
        self.source_directory = self._resolve_source_directory(source_directory)
        self.arguments = args.normalize(arguments)
        args.check(self.arguments, self.inputs, [o.name for o in self.outputs])
        self.create_pool = config.check_bool("create_pool", create_pool)
        self.delete_batch_job_after_finish = config.check_bool(
            "delete_batch_job_after_finish", delete_batch_job_after_finish
        )
        self.delete_batch_pool_after_finish = config.check_bool(
            "delete_batch_pool_after_finish", delete_batch_pool_after_finish
        )
        self.is_positive_exit_code_failure = config.check_bool(
            "is_positive_exit_code_failure", is_positive_exit_code_failure
        )
        self.run_task_as_admin = config.check_bool("run_task_as_admin", run_task_as_admin)
        if pool_id is None and self.remote:
            raise ConfigurationError("pool_id", "no pool given for a step on Azure Batch", "pass pool_id='<pool>'")
        # Checked with compute="local" too: the same DAG then runs on Batch by changing compute= alone.
        self.batch_pool = None if pool_id is None else _pool_spec(
            pool_id, self.create_pool, vm_size, vm_image_urn, vm_image_publisher, vm_image_offer, vm_image_sku,
            node_agent_sku_id, target_compute_nodes,
        )  # fmt: skip

    def step_definition(self) -> AzureBatchStep:
        folder = self._dag_folder()
        return AzureBatchStep(
            executable=self.executable,
            source_directory=self._resolve_source_directory(self.source_directory),
            arguments=list(self.arguments),
            params=self.step_params,
            pool=self.batch_pool,
            delete_batch_job_after_finish=self.delete_batch_job_after_finish,
            delete_batch_pool_after_finish=self.delete_batch_pool_after_finish,
            is_positive_exit_code_failure=self.is_positive_exit_code_failure,
            run_task_as_admin=self.run_task_as_admin,
            job_name=f"{self.dag_id}.{self.task_id}",
            local=not self.remote,
            base_dir=None if folder is None else str(folder),
        )

    def remote_compute(self) -> RemoteCompute:
        from airflow_provider_amlpipe.hooks.azure_batch import AzureBatchHook

        return AzureBatchHook(self.compute).get_remote_compute()


def _pool_spec(
    pool_id: object,
    create: bool,
    vm_size: str | None,
    urn: str | None,
    publisher: str | None,
    offer: str | None,
    sku: str | None,
    node_agent: str | None,
    nodes: object,
) -> PoolSpec:
    pool_id = check_pool_id("pool_id", pool_id)
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ConfigurationError("target_compute_nodes", f"expected a positive number, got {nodes!r}", "pass e.g. 1")
    if not create:
        return PoolSpec(pool_id)
    if not vm_size:
        raise ConfigurationError(
            "vm_size", "create_pool=True needs the nodes' VM size", "pass vm_size='standard_d2s_v3' (or another size)"
        )
    image = _image(urn, publisher, offer, sku)
    agent = node_agent or _node_agent(image)
    if agent is None:
        raise ConfigurationError(
            "node_agent_sku_id",
            f"the Batch node agent of image {image['publisher']}:{image['offer']}:{image['sku']} is not known",
            "pass node_agent_sku_id (see 'az batch pool supported-images list')",
        )
    return PoolSpec(pool_id, True, vm_size, image, agent, nodes)


def _image(urn: str | None, publisher: str | None, offer: str | None, sku: str | None) -> dict[str, str]:
    if urn:
        parts = urn.removeprefix("urn:").split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ConfigurationError(
                "vm_image_urn",
                f"{urn!r} is not publisher:offer:sku[:version]",
                "pass e.g. 'canonical:0001-com-ubuntu-server-jammy:22_04-lts'",
            )
        image = dict(zip(("publisher", "offer", "sku", "version"), parts, strict=False))
        image.setdefault("version", "latest")
        return image
    if publisher and offer and sku:
        return {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"}
    raise ConfigurationError(
        "vm_image_urn",
        "create_pool=True needs the nodes' image",
        "pass vm_image_urn='publisher:offer:sku' (or vm_image_publisher, vm_image_offer and vm_image_sku)",
    )


def _node_agent(image: Mapping[str, str]) -> str | None:
    """The node agent of common images (Batch's supported-images list)."""
    publisher, name = image["publisher"].lower(), f"{image['offer']} {image['sku']}".lower()
    if publisher == "microsoftwindowsserver":
        return "batch.node.windows amd64"
    if publisher == "canonical":
        for version in ("20_04", "22_04", "24_04"):
            if version in name:
                return f"batch.node.ubuntu {version.replace('_', '.')}"
    return None
