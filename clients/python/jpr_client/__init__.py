"""The JPR Python SDK: normalize, tokenize, sign, submit and look up.

Example:
    >>> from jpr_client import Applicant, Credentials, RegistryClient, Role, normalize
    >>> with RegistryClient(Credentials.load("platform-b.credentials.json")) as client:  # doctest: +SKIP
    ...     verdict = client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", "11010519491231002X"),))).verdict
"""

# The one version of the SDK and the registry: both pyproject.toml files read it from here, and the
# registry pins jpr-client at it (tests/integration/test_sdk_distribution.py checks the wheels agree).
__version__ = "0.1.0"

from typing import TYPE_CHECKING

# The public names are imported on first use (PEP 562), so a program that needs one part (the
# CLI's `--help`, a script that only normalizes) does not pay at start for gRPC and the crypto
# bindings. The modules that define them, cheapest first: a lookup imports no more than it needs.
_DEFINED_IN = (
    "jpr_client.model",
    "jpr_client.credentials",
    "jpr_client.cursor",
    "jpr_client.identifiers",
    "jpr_client.errors",
    "jpr_client.transparency.config",
    "jpr_client.transparency.cosignature",
    "jpr_client.transparency.proofs",
    "jpr_client.client",
)

if TYPE_CHECKING:
    from jpr_client.client import Applicant, NewReport, RegistryClient, RetryConfig
    from jpr_client.credentials import CertificateExpiryWarning, Credentials, CredentialsError
    from jpr_client.cursor import CursorFile
    from jpr_client.errors import (
        LogForkError,
        LogProofError,
        LogRollbackError,
        LogSignatureError,
        LogStateError,
        RPCError,
        TokenProofError,
        TransparencyError,
        WitnessQuorumError,
    )
    from jpr_client.transparency.config import MonitorConfig
    from jpr_client.transparency.cosignature import Cosigner
    from jpr_client.transparency.proofs import LogProof
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


def __getattr__(name: str) -> object:
    if name in __all__:
        import importlib

        for module_name in _DEFINED_IN:
            module = importlib.import_module(module_name)
            if name in vars(module):
                value: object = vars(module)[name]
                globals()[name] = value
                return value
    raise AttributeError(f"module 'jpr_client' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "__version__",
    "Applicant",
    "Category",
    "CertificateExpiryWarning",
    "ChangeKind",
    "Cosigner",
    "Credentials",
    "CredentialsError",
    "CursorFile",
    "Identifier",
    "IdentifierType",
    "InvalidIdentifier",
    "ListingChange",
    "ListingStatus",
    "LogForkError",
    "LogProof",
    "LogProofError",
    "LogRollbackError",
    "LogSignatureError",
    "LogStateError",
    "LookupResult",
    "Match",
    "MatchReason",
    "MonitorConfig",
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
    "TransparencyError",
    "Verdict",
    "WitnessQuorumError",
    "normalize",
]
