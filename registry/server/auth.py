"""Who is calling and may they: one interceptor for every method.

The caller's identity comes from its client certificate only (mutual TLS),
never from request fields or metadata. Methods are denied unless a rule below
names the roles allowed to call them. The same interceptor turns domain
`RegistryError`s into a gRPC status with the error's message, and gives every
call a request id of its own (`x-request-id`), sent to the caller and written in
the call's access-log record (registry/server/request_ids.py says where it travels).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc

from jpr_client.quoting import quoted
from registry.crypto import pki
from registry.domain.errors import RegistryError
from registry.domain.model import Caller, MemberStatus
from registry.server.access_log import CALL, END, OPEN, AccessLog, element_counts
from registry.server.capacity import never
from registry.server.metrics import Metrics
from registry.server.request_ids import RequestIds, send_request_id
from registry.server.streams import OpenStreams, Refusal, Stream, StreamLimits, caller_key, unexplained_end
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
    "/jpr.v1.Admin/RegisterCertificate": ADMIN,
    "/jpr.v1.Admin/ListCertificates": ADMIN,
    "/jpr.v1.Admin/SetOnboardingVolume": ADMIN,
    "/jpr.v1.Admin/AuditAccess": ADMIN,
    "/jpr.v1.Admin/ListReports": ADMIN,
    "/jpr.v1.Admin/AcceptReport": ADMIN,
    "/jpr.v1.Admin/RejectReport": ADMIN,
    "/jpr.v1.Admin/ListListings": ADMIN,
    "/jpr.v1.Admin/LiftListing": ADMIN,
    "/jpr.v1.Admin/ReleaseListing": ADMIN,
    "/jpr.v1.Admin/RecordObjection": ADMIN,
    "/jpr.v1.Admin/FileAppeal": ADMIN,
    "/jpr.v1.Admin/DecideAppeal": ADMIN,
    "/jpr.v1.Admin/ListAppeals": ADMIN,
    "/jpr.v1.Admin/ListReviewQueue": ADMIN,
    "/jpr.v1.Admin/DetachIdentifier": ADMIN,
    "/jpr.v1.Admin/SplitSubject": ADMIN,
    "/jpr.v1.Admin/GetSubject": ADMIN,
    "/jpr.v1.Admin/ListEvents": ADMIN,
    "/jpr.v1.Admin/ImportReports": ADMIN,
    "/jpr.v1.Admin/AddWitness": ADMIN,
    "/jpr.v1.Admin/RemoveWitness": ADMIN,
    "/jpr.v1.Admin/ListWitnesses": ADMIN,
    "/jpr.v1.TransparencyLog/GetCheckpoint": PEOPLE,
    "/jpr.v1.TransparencyLog/GetLogEntry": PEOPLE,
    "/jpr.v1.TransparencyLog/GetConsistencyProof": PEOPLE,
    "/jpr.v1.TransparencyLog/AddCosignature": PEOPLE,
    "/grpc.health.v1.Health/Check": ANYONE,
    "/grpc.health.v1.Health/Watch": ANYONE,
    "/grpc.health.v1.Health/List": ANYONE,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PEOPLE,
}

RETRY_AFTER_KEY = "grpc-retry-pushback-ms"  # gRPC's own name for "retry after this many milliseconds"

_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("jpr_caller")


def current_caller() -> Caller:
    """The authenticated caller of the call being served."""
    return _caller.get()


def allowed_roles(method: str) -> frozenset[str]:
    return RULES.get(method, frozenset())


@functools.lru_cache(maxsize=4096)
def _identity(cert_pem: bytes) -> tuple[Caller, datetime, datetime] | None:
    """The caller a client certificate names (one object per certificate, not one per call), when it was
    signed and when it expires; None for a certificate without a JPR identity."""
    try:
        role, name = pki.identity_from_cert(cert_pem)
    except pki.PkiError:
        return None
    return Caller(role=role, name=name, certificate_sha256=pki.fingerprint(cert_pem)), pki.issued_at(cert_pem), pki.not_after(cert_pem)


@dataclass(frozen=True)
class MalformedRequest:
    """What a request body that is not the method's message decodes to, so that the call can say so."""

    message: str


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """gRPC answers an undecodable body with INTERNAL and logs a traceback; the call answers INVALID_ARGUMENT instead."""
    if deserialize is None:
        return None
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    name = descriptor.full_name if descriptor is not None else "request message"

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or whatever a future decoder raises: the bytes are the caller's
            return MalformedRequest(f"the request body is not a serialized {name}; send the method's request message")

    return decode


_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self,
        member_status: Callable[[str], MemberStatus | None],
        certificate_revoked: Callable[[str], bool],
        certificate_admitted: Callable[[str, datetime, datetime], bool],
        access_log: AccessLog,
        stream_limits: StreamLimits = StreamLimits(),
        *,
        ticks: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self._member_status = member_status
        self._certificate_revoked = certificate_revoked
        self._certificate_admitted = certificate_admitted
        self._access_log = access_log
        self._metrics = metrics or Metrics()
        self.streams = OpenStreams(stream_limits, self._standing, refused=self._metrics.stream_refused)
        self._malformed = MalformedLog(ticks)
        self._handlers: dict[str, tuple[Any, Any]] = {}
        self._request_ids = RequestIds()
        self.saturated: Callable[[], bool] = never  # set once the server exists (registry/server/capacity.py)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        if self.saturated():  # gRPC refuses this call next, unseen by any handler: count and log it here
            self._metrics.concurrency_refused()
            self._record(method, None, "RESOURCE_EXHAUSTED", time.perf_counter(), 0, 0, request_id="")
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = self._wrap(method, handler)
        self._handlers[method] = (handler, guarded)
        return guarded

    def _wrap(self, method: str, handler: Any) -> Any:
        kind = next(k for k in _KINDS if getattr(handler, k) is not None)
        behavior = getattr(handler, kind)
        if handler.request_streaming or handler.response_streaming:
            guarded = self._guard_stream(method, behavior, handler.request_streaming, handler.response_streaming)
        else:
            guarded = self._guard(method, behavior)
        return handler._replace(**{kind: guarded, "request_deserializer": _lenient(handler.request_deserializer)})

    def _guard(self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            request_id = self._request_ids.new(context)
            caller = self._admit(method, request, context, started, request_id, CALL)
            token = _caller.set(caller)
            deadline = set_deadline(context.time_remaining())  # carried down to the database's statement timeouts
            status, response = "OK", None
            try:
                response = behavior(request, context)
                return response
            except Exception as error:
                code, message = self._failure(method, caller, error, context)
                status = code.name
                context.abort(code, message)
            finally:
                reset_deadline(deadline)
                _caller.reset(token)
                self._record(method, caller, status, started, *element_counts(method, request, response), request_id=request_id)

        return guarded

    def _guard_stream(
        self, method: str, behavior: Callable[[Any, grpc.ServicerContext], Any], request_streaming: bool, response_streaming: bool
    ) -> Callable[..., Any]:
        """A long-lived call: admitted like any call, then given a stream slot that its end frees.
        Logged when it opens (or is refused) and when it ends."""

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            request_id = self._request_ids.new(context)

            def opened(status: str) -> None:
                self._record(method, caller, status, started, 0, 0, request_id=request_id, event=OPEN)

            caller = self._admit(method, None if request_streaming else request, context, started, request_id, OPEN)
            try:
                stream = self.streams.open(method, caller, context)
            except RegistryError as error:
                opened(error.status)
                context.abort(grpc.StatusCode[error.status], str(error))
            if request_streaming:
                request = self._checked(method, caller, request, context)
            stream.running = not response_streaming  # this thread reads the requests until behavior returns
            token = _caller.set(caller)
            try:
                result = behavior(request, context)
            except Exception as error:
                self.streams.close(stream)
                self._end_stream(method, caller, error, context, opened)
            finally:
                _caller.reset(token)
            opened("OK")
            send_request_id(context, request_id)
            self._log_end(stream, context, started, request_id)
            if not response_streaming:
                stream.end("OK")
                self.streams.close(stream)
                return result
            return self._relay(method, caller, result, stream, context)

        return guarded

    def _relay(self, method: str, caller: Caller, responses: Any, stream: Stream, context: grpc.ServicerContext) -> Iterator[Any]:
        stream.running = True
        try:
            yield from responses
            stream.end("OK")
        except Exception as error:
            self._end_stream(method, caller, error, context, stream.end)
        finally:
            self.streams.close(stream)  # the thread leaves the call: its slot is free

    def _end_stream(
        self, method: str, caller: Caller, error: Exception, context: grpc.ServicerContext, ends: Callable[[str], None]
    ) -> None:
        """A stream's servicer raised. If the call had already ended (the servicer aborted it, the client cancelled,
        the sweeper ended it), that end stands and is not a fault; otherwise it ends like any call.
        `ends` is told the status it ends with."""
        ended: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
        if ended is not None or not context.is_active():
            ends((ended or grpc.StatusCode.CANCELLED).name)
            raise error
        code, message = self._failure(method, caller, error, context)
        ends(code.name)
        context.abort(code, message)

    def _log_end(self, stream: Stream, context: grpc.ServicerContext, started: float, request_id: str) -> None:
        """Record the stream's end when the call ends, however it ends: gRPC runs the callback then, on its own thread."""

        def ended() -> None:
            status = stream.ended or unexplained_end(context)
            self._record(stream.method, stream.caller, status, started, 0, 0, request_id=request_id, event=END)

        if not context.add_callback(ended):  # the call ended already
            ended()

    def _checked(self, method: str, caller: Caller, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            if type(request) is MalformedRequest:
                self._refuse_malformed(method, caller, request, context)
            yield request

    def _admit(self, method: str, request: Any, context: grpc.ServicerContext, started: float, request_id: str, event: str) -> Caller:
        """The caller, once it may make this call; otherwise the call is aborted with the reason (and recorded as `event`)."""
        try:
            caller, refusal = self._authorize(method, context)
        except Exception:  # e.g. the member view could not read its database: logged, recorded, INTERNAL
            log.exception("%s: authorizing the caller failed", method)
            caller, refusal = None, (grpc.StatusCode.INTERNAL, "internal error; the registry logged the cause")
        if refusal is not None:
            code, message = refusal
            self._record(method, caller, code.name, started, 0, 0, request_id=request_id, event=event)
            context.abort(code, message)
        assert caller is not None
        if type(request) is MalformedRequest:
            self._record(method, caller, "INVALID_ARGUMENT", started, 0, 0, request_id=request_id, event=event)
            self._refuse_malformed(method, caller, request, context)
        return caller

    def _refuse_malformed(self, method: str, caller: Caller, request: MalformedRequest, context: grpc.ServicerContext) -> None:
        if self._malformed.should_log(caller):
            log.warning("%s refused for %s:%s: %s (logged once a minute per caller)", method, caller.role, caller.name, request.message)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)

    def _failure(self, method: str, caller: Caller, error: Exception, context: grpc.ServicerContext) -> Refusal:
        """How a call that raised `error` ends: a RegistryError with its status and message; anything else is a defect
        or an infrastructure fault, whose detail goes to the log, not to the caller."""
        if isinstance(error, RegistryError):
            retry_after_ms = getattr(error, "retry_after_ms", None)
            if retry_after_ms is not None:
                context.set_trailing_metadata((*context.trailing_metadata(), (RETRY_AFTER_KEY, str(retry_after_ms))))
            return grpc.StatusCode[error.status], str(error)
        log.error("%s failed for %s:%s", method, caller.role, caller.name, exc_info=error)
        return grpc.StatusCode.INTERNAL, "internal error; the registry logged the cause"

    def _record(
        self, method: str, caller: Caller | None, status: str, started: float, items: int, matched: int,
        *, request_id: str, event: str = CALL,
    ) -> None:
        role, name, sha256 = (caller.role, caller.name, caller.certificate_sha256) if caller else ("", "", "")
        milliseconds = (time.perf_counter() - started) * 1000
        self._access_log.record(method, role, name, sha256, status, milliseconds, items, matched, request_id, event)
        if event != END:  # a stream counts once, when it opens
            member = name if role == pki.ROLE_MEMBER else None
            self._metrics.call(method, member, status, milliseconds / 1000, items, matched)

    def _authorize(self, method: str, context: grpc.ServicerContext) -> tuple[Caller | None, Refusal | None]:
        """The caller, and why it is refused (None: allowed)."""
        certs = context.auth_context().get("x509_pem_cert")
        identity = _identity(certs[0]) if certs else None
        if identity is None:
            log.warning("%s refused: no client certificate with a JPR identity", method)
            return None, (grpc.StatusCode.UNAUTHENTICATED, "a client certificate issued by this registry's CA is required")
        caller, issued_at, expires_at = identity
        refusal = (
            self._revoked(caller) or self._unregistered(caller, issued_at, expires_at) or self._role_refusal(method, caller)
            or self._membership(caller)
        )
        if refusal is not None and refusal[0] is not grpc.StatusCode.UNAVAILABLE:
            log.warning("%s refused for %s:%s: %s", method, caller.role, caller.name, refusal[1])
        return caller, refusal

    def _standing(self, caller: Caller) -> Refusal | None:
        """Why a caller admitted earlier would be refused now (its open streams end then)."""
        return self._revoked(caller) or self._membership(caller)

    def _revoked(self, caller: Caller) -> Refusal | None:
        if not self._certificate_revoked(caller.certificate_sha256):
            return None
        return grpc.StatusCode.UNAUTHENTICATED, (
            f"client certificate {caller.certificate_sha256} has been revoked; ask the association for a new one"
        )

    def _unregistered(self, caller: Caller, issued_at: datetime, expires_at: datetime) -> Refusal | None:
        try:
            if self._certificate_admitted(caller.certificate_sha256, issued_at, expires_at):
                return None
        except RegistryError as error:  # the view could not say (UNAVAILABLE): retry
            return grpc.StatusCode[error.status], str(error)
        return grpc.StatusCode.UNAUTHENTICATED, (
            f"client certificate {caller.certificate_sha256} was never registered with this registry; "
            "the association registers each certificate it signs (`jpr admin cert register`)"
        )

    @staticmethod
    def _role_refusal(method: str, caller: Caller) -> Refusal | None:
        roles = allowed_roles(method)
        if caller.role in roles:
            return None
        who = " or ".join(sorted(roles)) if roles else "nobody"
        return grpc.StatusCode.PERMISSION_DENIED, f"{method} is for {who}; you are {caller.role} {quoted(caller.name)}"

    def _membership(self, caller: Caller) -> Refusal | None:
        if caller.role != pki.ROLE_MEMBER:
            return None
        try:
            status = self._member_status(caller.name)
        except RegistryError as error:
            return grpc.StatusCode[error.status], str(error)
        if status is None:
            return grpc.StatusCode.PERMISSION_DENIED, f"member {quoted(caller.name)} is not registered"
        if status is not MemberStatus.ACTIVE:
            return grpc.StatusCode.PERMISSION_DENIED, f"member {quoted(caller.name)} is {status.value}"
        return None

    def close(self) -> None:
        self.streams.close_all()


class MalformedLog:
    """Undecodable requests are logged at most once a minute per caller: a broken client must not flood the log."""

    def __init__(self, ticks: Callable[[], float], every: float = 60.0) -> None:
        self._ticks = ticks
        self._every = every
        self._last: dict[str, float] = {}

    def should_log(self, caller: Caller) -> bool:
        key, now = caller_key(caller), self._ticks()
        if now - self._last.get(key, float("-inf")) < self._every:
            return False
        self._last[key] = now
        return True
