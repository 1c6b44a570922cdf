"""Who is calling and may they: one interceptor for every method.

The caller's identity comes from its client certificate only (mutual TLS),
never from request fields or metadata. Methods are denied unless a rule below
names the roles allowed to call them. The same interceptor turns domain
`RegistryError`s into a gRPC status with the error's message.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from registry.crypto import pki
from registry.domain.errors import RegistryError
from registry.domain.model import Caller, MemberStatus
from registry.server.access_log import AccessLog, element_counts
from registry.store.database import reset_deadline, set_deadline

log = logging.getLogger("jpr.access")

MEMBER = frozenset({pki.ROLE_MEMBER})
ADMIN = frozenset({pki.ROLE_ADMIN})
PEOPLE = frozenset({pki.ROLE_MEMBER, pki.ROLE_ADMIN})
ANYONE = frozenset({pki.ROLE_MEMBER, pki.ROLE_ADMIN, pki.ROLE_PROBE})

# One rule per method, spelled out: a method without a rule is refused to everyone
# (and tests/integration/test_access.py fails until it gets one).
RULES: Mapping[str, frozenset[str]] = {
    "/jpr.v1.Registry/Tokenize": MEMBER,
    "/jpr.v1.Registry/SubmitReport": MEMBER,
    "/jpr.v1.Registry/GetReport": MEMBER,
    "/jpr.v1.Registry/RetractReport": MEMBER,
    "/jpr.v1.Registry/Lookup": MEMBER,
    "/jpr.v1.Registry/LookupBatch": MEMBER,
    "/jpr.v1.Registry/WatchChanges": MEMBER,
    "/jpr.v1.Registry/RecordOpinion": MEMBER,
    "/jpr.v1.Admin/CreateMember": ADMIN,
    "/jpr.v1.Admin/ListMembers": ADMIN,
    "/jpr.v1.Admin/AddMemberKey": ADMIN,
    "/jpr.v1.Admin/RevokeMemberKey": ADMIN,
    "/jpr.v1.Admin/SuspendMember": ADMIN,
    "/jpr.v1.Admin/ResumeMember": ADMIN,
    "/jpr.v1.Admin/RevokeCertificate": ADMIN,
    "/jpr.v1.Admin/SetOnboardingVolume": ADMIN,
    "/jpr.v1.Admin/AuditAccess": ADMIN,
    "/jpr.v1.Admin/ListReports": ADMIN,
    "/jpr.v1.Admin/AcceptReport": ADMIN,
    "/jpr.v1.Admin/RejectReport": ADMIN,
    "/jpr.v1.Admin/ListListings": ADMIN,
    "/jpr.v1.Admin/LiftListing": ADMIN,
    "/jpr.v1.Admin/RecordObjection": ADMIN,
    "/jpr.v1.Admin/FileAppeal": ADMIN,
    "/jpr.v1.Admin/DecideAppeal": ADMIN,
    "/jpr.v1.Admin/ListReviewQueue": ADMIN,
    "/jpr.v1.Admin/DetachIdentifier": ADMIN,
    "/jpr.v1.Admin/SplitSubject": ADMIN,
    "/jpr.v1.Admin/GetSubject": ADMIN,
    "/grpc.health.v1.Health/Check": ANYONE,
    "/grpc.health.v1.Health/Watch": ANYONE,
    "/grpc.health.v1.Health/List": ANYONE,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PEOPLE,
}

RETRY_AFTER_KEY = "grpc-retry-pushback-ms"  # gRPC's own name for "retry after this many milliseconds"

Refusal = tuple[grpc.StatusCode, str]

_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("jpr_caller")


def current_caller() -> Caller:
    """The authenticated caller of the call being served."""
    return _caller.get()


def allowed_roles(method: str) -> frozenset[str]:
    return RULES.get(method, frozenset())


@functools.lru_cache(maxsize=4096)
def _identity(cert_pem: bytes) -> tuple[str, str, str] | None:
    """(role, name, SHA-256 of the certificate) of a client certificate, or None."""
    try:
        role, name = pki.identity_from_cert(cert_pem)
    except pki.PkiError:
        return None
    return role, name, pki.fingerprint(cert_pem)


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self,
        member_status: Callable[[str], MemberStatus | None],
        certificate_revoked: Callable[[str], bool],
        access_log: AccessLog,
    ) -> None:
        self._member_status = member_status
        self._certificate_revoked = certificate_revoked
        self._access_log = access_log

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._guard(method, handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._guard(method, handler.unary_stream))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._guard(method, handler.stream_unary))
        return handler._replace(stream_stream=self._guard(method, handler.stream_stream))

    def _guard(self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                caller, refusal = self._authorize(method, context)
            except Exception:  # e.g. the member view could not read its database: logged, recorded, INTERNAL
                log.exception("%s: authorizing the caller failed", method)
                caller, refusal = None, (grpc.StatusCode.INTERNAL, "internal error; the registry logged the cause")
            if refusal is not None:
                code, message = refusal
                self._record(method, caller, code.name, started, 0, 0)
                context.abort(code, message)
            assert caller is not None
            token = _caller.set(caller)
            deadline = set_deadline(context.time_remaining())  # carried down to the database's statement timeouts
            status, response = "OK", None
            try:
                response = behavior(request, context)
                return response
            except RegistryError as error:
                status = error.status
                retry_after_ms = getattr(error, "retry_after_ms", None)
                if retry_after_ms is not None:
                    context.set_trailing_metadata(((RETRY_AFTER_KEY, str(retry_after_ms)),))
                context.abort(grpc.StatusCode[error.status], str(error))
            except Exception:
                # A defect or an infrastructure fault: the detail goes to the log, not to the caller.
                status = "INTERNAL"
                log.exception("%s failed for %s:%s", method, caller.role, caller.name)
                context.abort(grpc.StatusCode.INTERNAL, "internal error; the registry logged the cause")
            finally:
                reset_deadline(deadline)
                _caller.reset(token)
                self._record(method, caller, status, started, *element_counts(method, request, response))

        return guarded

    def _record(self, method: str, caller: Caller | None, status: str, started: float, items: int, matched: int) -> None:
        role, name, sha256 = (caller.role, caller.name, caller.certificate_sha256) if caller else ("-", "-", "")
        self._access_log.record(method, role, name, sha256, status, (time.perf_counter() - started) * 1000, items, matched)

    def _authorize(self, method: str, context: grpc.ServicerContext) -> tuple[Caller | None, Refusal | None]:
        """The caller, and why it is refused (None: allowed)."""
        certs = context.auth_context().get("x509_pem_cert")
        identity = _identity(certs[0]) if certs else None
        if identity is None:
            log.warning("%s refused: no client certificate with a JPR identity", method)
            return None, (grpc.StatusCode.UNAUTHENTICATED, "a client certificate issued by this registry's CA is required")
        role, name, sha256 = identity
        caller = Caller(role=role, name=name, certificate_sha256=sha256)
        if self._certificate_revoked(sha256):
            log.warning("%s refused for %s:%s: certificate %s is revoked", method, role, name, sha256)
            return caller, (grpc.StatusCode.UNAUTHENTICATED, f"client certificate {sha256} has been revoked; ask the association for a new one")
        roles = allowed_roles(method)
        if role not in roles:
            log.warning("%s refused for %s:%s", method, role, name)
            who = " or ".join(sorted(roles)) if roles else "nobody"
            return caller, (grpc.StatusCode.PERMISSION_DENIED, f"{method} is for {who}; you are {role} {name!r}")
        if role == pki.ROLE_MEMBER:
            return caller, self._member_refusal(name)
        return caller, None

    def _member_refusal(self, name: str) -> Refusal | None:
        try:
            status = self._member_status(name)
        except RegistryError as error:
            return grpc.StatusCode[error.status], str(error)
        if status is None:
            return grpc.StatusCode.PERMISSION_DENIED, f"member {name!r} is not registered"
        if status is not MemberStatus.ACTIVE:
            return grpc.StatusCode.PERMISSION_DENIED, f"member {name!r} is {status.value}"
        return None
