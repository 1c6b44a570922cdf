"""The registry's error root.

Each subclass names the gRPC status it maps to; one interceptor in
`registry.server` turns them into `context.abort(code, message)`. The domain
stays free of grpc: the status is carried by name.
"""

from __future__ import annotations


class RegistryError(Exception):
    """A refusal the caller can act on. `str(error)` is sent to the client."""

    status = "INTERNAL"


class InvalidArgument(RegistryError):
    status = "INVALID_ARGUMENT"


class Unauthenticated(RegistryError):
    status = "UNAUTHENTICATED"


class PermissionDenied(RegistryError):
    status = "PERMISSION_DENIED"


class NotFound(RegistryError):
    status = "NOT_FOUND"


class AlreadyExists(RegistryError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(RegistryError):
    status = "FAILED_PRECONDITION"


class ResourceExhausted(RegistryError):
    status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms  # sent as the `grpc-retry-pushback-ms` trailer


class DeadlineExceeded(RegistryError):
    """The caller's deadline passed while the registry worked; the work in progress was abandoned."""

    status = "DEADLINE_EXCEEDED"


class Unavailable(RegistryError):
    """The registry cannot answer correctly right now; the same call may succeed later or elsewhere."""

    status = "UNAVAILABLE"
