"""Microsoft Entra tokens for Databricks, from any azure-identity credential.

databricks-sdk has its own Azure logins; this one takes an azure-identity ``TokenCredential`` (a service
principal, a managed identity, the default chain), so a Databricks connection authenticates the same way
as the provider's Blob and Batch connections, with azure-identity's token cache and refresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy

if TYPE_CHECKING:
    from databricks.sdk.config import Config

#: The Entra application id of Azure Databricks: tokens for this resource open any Azure Databricks workspace.
AZURE_DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"


class AzureIdentityStrategy(CredentialsStrategy):
    """Sends ``Authorization: Bearer <token>`` with a token the credential gives for Azure Databricks."""

    def __init__(self, credential: Any) -> None:
        self.credential = credential

    def auth_type(self) -> str:
        return "azure-identity"

    def __call__(self, cfg: Config) -> CredentialsProvider:
        def headers() -> dict[str, str]:
            # azure-identity caches the token and refreshes it before it expires.
            token = self.credential.get_token(AZURE_DATABRICKS_SCOPE)
            return {"Authorization": f"Bearer {token.token}"}

        return headers


def azure_identity_strategy(credential: Any) -> AzureIdentityStrategy:
    """A databricks-sdk ``credentials_strategy`` from an azure-identity ``TokenCredential``."""
    return AzureIdentityStrategy(credential)
