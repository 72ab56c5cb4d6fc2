"""``@@JobInfo``: the system variable holding the job's properties (U-SQL reference "@@JOBINFO").

On ADLA the values come from the job submission; locally they come from :class:`JobInfo`, whose defaults describe
the local run (the script's file name, the OS user, a fresh id, the time of compilation). Callers that know better
pass their own ``JobInfo`` to ``compile_script`` / ``run_script`` (the CLI's ``--job-name/--job-id/--job-priority``;
the ADLA step names the job after its task and passes its priority).
"""

from __future__ import annotations

import getpass
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from airflow_provider_amlpipe.usql.types import UType

#: Each property's U-SQL type, as documented.
PROPERTY_TYPES = {
    "@@JobInfo.Id": UType("Guid", True),
    "@@JobInfo.Name": UType("string", True),
    "@@JobInfo.Priority": UType("int", True),
    "@@JobInfo.Allocation": UType("int", True),
    "@@JobInfo.Account.Name": UType("string", True),
    "@@JobInfo.Submit.Alias": UType("string", True),
    "@@JobInfo.Submit.Date": UType("DateTime", True),
}
#: Property names that have sub-properties (``@@JobInfo.Submit.Alias``).
GROUPS = ("Account", "Submit")


def _local_alias() -> str:
    """``user@host``: ADLA's alias is the submitter's sign-in name (``name@domain``), and scripts split it at ``@``."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class JobInfo:
    """The values of ``@@JobInfo.*``; a property left None is null (the nullable ones: Id, Priority, Allocation,
    Submit.Date), or the empty string for the string ones."""

    name: str = ""
    id: uuid.UUID | None = field(default_factory=uuid.uuid4)
    priority: int | None = None
    allocation: int | None = None
    account_name: str = "local"
    submit_alias: str = field(default_factory=_local_alias)
    submit_date: datetime | None = field(default_factory=lambda: datetime.now().replace(microsecond=0))

    @classmethod
    def local(cls, source_name: str) -> JobInfo:
        """The defaults of a local run: the job's name is the script's file name."""
        return cls(name=PurePath(source_name).name)

    def values(self) -> dict[str, object]:
        """Each property's value (None for null), keyed like :data:`PROPERTY_TYPES`."""
        return {
            "@@JobInfo.Id": self.id,
            "@@JobInfo.Name": self.name,
            "@@JobInfo.Priority": self.priority,
            "@@JobInfo.Allocation": self.allocation,
            "@@JobInfo.Account.Name": self.account_name,
            "@@JobInfo.Submit.Alias": self.submit_alias,
            "@@JobInfo.Submit.Date": self.submit_date,
        }
