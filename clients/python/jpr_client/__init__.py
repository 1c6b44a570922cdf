"""The JPR Python SDK: normalize, tokenize, sign, submit and look up.

Example:
    >>> from jpr_client import Applicant, Credentials, RegistryClient, Role, normalize
    >>> with RegistryClient(Credentials.load("platform-b.credentials.json")) as client:  # doctest: +SKIP
    ...     verdict = client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", "11010519491231002X"),))).verdict
"""

# The one version of the SDK and the registry: both pyproject.toml files read it from here, and the
# registry pins jpr-client at it (tests/integration/test_sdk_distribution.py checks the wheels agree).
__version__ = "0.1.0"

from jpr_client.client import Applicant, NewReport, RegistryClient, RetryConfig
from jpr_client.credentials import Credentials, CredentialsError
from jpr_client.cursor import CursorFile
from jpr_client.errors import RPCError, TokenProofError
from jpr_client.identifiers import Identifier, InvalidIdentifier, normalize
from jpr_client.model import (
    Category,
    ChangeKind,
    IdentifierType,
    ListingChange,
    ListingStatus,
    LookupResult,
    Match,
    MatchReason,
    Opinion,
    OpinionReceipt,
    Receipt,
    Report,
    ReportStatus,
    Role,
    Severity,
    Token,
    Verdict,
)

__all__ = [
    "__version__",
    "Applicant",
    "Category",
    "ChangeKind",
    "Credentials",
    "CredentialsError",
    "CursorFile",
    "Identifier",
    "IdentifierType",
    "InvalidIdentifier",
    "ListingChange",
    "ListingStatus",
    "LookupResult",
    "Match",
    "MatchReason",
    "NewReport",
    "Opinion",
    "OpinionReceipt",
    "RPCError",
    "Receipt",
    "RegistryClient",
    "Report",
    "ReportStatus",
    "RetryConfig",
    "Role",
    "Severity",
    "Token",
    "TokenProofError",
    "Verdict",
    "normalize",
]
