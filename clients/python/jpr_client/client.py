"""`RegistryClient`: the typed, retrying, deadline-bound way to call the registry."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from jpr_client import _convert, transport
from jpr_client.api.jpr.v1 import registry_pb2, registry_pb2_grpc, types_pb2
from jpr_client.credentials import CertificateExpiryWarning, Credentials
from jpr_client.crypto import dsse, oprf
from jpr_client.cursor import CursorFile
from jpr_client.errors import LogProofError, RPCError, TokenProofError
from jpr_client.identifiers import Identifier
from jpr_client.model import (
    Category,
    ListingChange,
    LookupResult,
    Match,
    Opinion,
    OpinionReceipt,
    Receipt,
    Report,
    Role,
    Severity,
    Token,
)
from jpr_client.protocol import PROTOCOL_ENUMS, datetime_to_timestamp
from jpr_client.transparency.config import MonitorConfig

if TYPE_CHECKING:  # the log's code is loaded by the first log call: a lookup needs none of it
    from jpr_client.log_reader import LogReader
    from jpr_client.transparency.checkpoint import Checkpoint
    from jpr_client.transparency.cosignature import Cosigner
    from jpr_client.transparency.proofs import LogProof

R = TypeVar("R")
LOOKUP_BATCH_LIMIT = 1000
TOKENIZE_BATCH_LIMIT = 10_000


@dataclass(frozen=True)
class RetryConfig:
    """Retries for calls that are safe to repeat, on UNAVAILABLE only, made by gRPC itself (`service_config`).

    `attempts` counts the first call (1: no retry; gRPC allows at most 5). The call's deadline covers
    every attempt. `max_pushback_wait`: how long `lookup_batch` and `tokenize` may wait, in all, on
    the registry's rate limit (RESOURCE_EXHAUSTED with a retry delay) before raising.
    """

    attempts: int = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    max_pushback_wait: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise ValueError(f"RetryConfig.attempts is {self.attempts}; gRPC retries allow 1 to {MAX_ATTEMPTS}")
        if not 0 < self.initial_backoff <= self.max_backoff:
            raise ValueError("RetryConfig needs 0 < initial_backoff <= max_backoff")


# Calls that are safe to repeat: reads, deterministic tokenization, and writes the registry makes
# idempotent (a resubmitted report or retraction is the same signed bytes; an opinion replaces the last).
# Admin decisions (accept, lift, suspend...) are never repeated by the client; ImportReports is idempotent per report id.
log = logging.getLogger("jpr_client")

SAFE_TO_REPEAT: dict[str, tuple[str, ...]] = {
    "jpr.v1.Registry": ("Tokenize", "SubmitReport", "GetReport", "RetractReport", "Lookup", "LookupBatch", "RecordOpinion"),
    "jpr.v1.Admin": (
        "ListMembers", "ListReports", "ListListings", "ListAppeals", "ListReviewQueue", "GetSubject", "ListEvents", "AuditAccess",
        "ListCertificates", "ImportReports",
    ),
    "jpr.v1.TransparencyLog": ("GetCheckpoint", "GetLogEntry", "GetConsistencyProof", "AddCosignature"),
    "grpc.health.v1.Health": ("Check",),
}
MAX_ATTEMPTS = 5  # gRPC's own cap on retryPolicy.maxAttempts


def service_config(retry: RetryConfig) -> dict[str, Any]:
    """The gRPC service config of the SDK's channels (docs/protocol.md publishes it for other languages).

    Example:
        >>> service_config(RetryConfig())["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"]
        ['UNAVAILABLE']
    """
    # Round robin over every address the target names (an endpoint list, or a DNS name with several
    # records); with one address it is the same as gRPC's default.
    balancing: list[dict[str, Any]] = [{"round_robin": {}}]
    if retry.attempts == 1:
        return {"loadBalancingConfig": balancing, "methodConfig": []}
    names = [{"service": service, "method": method} for service, methods in SAFE_TO_REPEAT.items() for method in methods]
    policy = {
        "maxAttempts": retry.attempts,
        "initialBackoff": f"{retry.initial_backoff:g}s",
        "maxBackoff": f"{retry.max_backoff:g}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return {"loadBalancingConfig": balancing, "methodConfig": [{"name": names, "retryPolicy": policy}]}


def warn_if_expiring(credentials: Credentials) -> None:
    """A CertificateExpiryWarning (and a log line) when the client certificate expires within 30 days."""
    message = credentials.expiry_warning()
    if message is not None:
        log.warning("%s", message)
        warnings.warn(message, CertificateExpiryWarning, stacklevel=3)


@dataclass(frozen=True)
class Applicant:
    """A merchant or anchor going through an entry audit, with normalized identifiers."""

    role: Role
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True)
class NewReport:
    """A report to sign and submit. `report_id` and `created_at` are fixed at creation,
    so submitting the same `NewReport` twice sends the same bytes (and is a no-op)."""

    role: Role
    identifiers: tuple[Identifier, ...]
    category: Category
    severity: Severity
    summary: str
    platform_action: str
    evidence_sha256: bytes
    occurred_at: datetime | None = None
    display_name: str = ""
    report_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))


class RegistryClient:
    """A member's connection to the registry.

    Example:
        >>> from jpr_client import RegistryClient, Credentials, Applicant, Role, normalize
        >>> with RegistryClient(Credentials.load("platform-b.credentials.json")) as client:  # doctest: +SKIP
        ...     result = client.lookup(Applicant(Role.MERCHANT, (normalize("cn_ric", "11010519491231002X"),)))
        ...     result.verdict
        <Verdict.DENY: 3>
    """

    def __init__(
        self, credentials: Credentials, *, timeout: float = 10.0, retry: RetryConfig = RetryConfig(), monitor: MonitorConfig = MonitorConfig()
    ) -> None:
        self.credentials = credentials
        self._timeout = timeout
        self._retry = retry
        warn_if_expiring(credentials)
        self._channel = secure_channel(credentials, retry)
        self._stub = registry_pb2_grpc.RegistryStub(self._channel)
        self._monitor_config = monitor
        self._log_reader: LogReader | None = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def connect(self, timeout: float = 5.0) -> None:
        """Connect now, at most `timeout` seconds; credentials of another registry raise RPCError at once.

        Calls connect on their own; this only spares a program the retries (about a second) that end
        in the same UNAVAILABLE when the registry's certificate is not signed by the credentials' CA.

        Example:
            >>> with RegistryClient(credentials) as client:  # doctest: +SKIP
            ...     client.connect()
        """
        transport.connect(self._channel, self.credentials.endpoint, timeout)

    def tokenize(self, identifiers: Sequence[Identifier]) -> list[Token]:
        """Tokens of normalized identifiers: blinded here, evaluated by the registry, unblinded here.

        Example:
            >>> client.tokenize([normalize("phone", "138 0013 8000")])[0].type  # doctest: +SKIP
            <IdentifierType.PHONE: 'phone'>
        """
        pinned = self.credentials.pinned_oprf_public_key
        tokens: list[Token] = []
        for start in range(0, len(identifiers), TOKENIZE_BATCH_LIMIT):
            tokens.extend(self._tokenize_chunk(identifiers[start : start + TOKENIZE_BATCH_LIMIT], pinned))
        return tokens

    def _tokenize_chunk(self, chunk: Sequence[Identifier], pinned: bytes) -> list[Token]:
        """One Tokenize call: blind, evaluate remotely, verify the batch proof, unblind."""
        inputs = [oprf.token_input(i.type.value, i.value) for i in chunk]
        blinds, blinded = zip(*(oprf.blind(data) for data in inputs), strict=True)
        request = registry_pb2.TokenizeRequest(blinded_elements=blinded)
        response = self._paced("Tokenize", self._stub.Tokenize, request)
        evaluated = list(response.evaluated_elements)
        if len(evaluated) != len(chunk):
            raise RPCError(grpc.StatusCode.INTERNAL, "registry answered a different number of elements", "Tokenize")
        verify_evaluation(pinned, blinded, evaluated, response.proof)
        return [
            Token(type=identifier.type, value=oprf.finalize(data, blind, element))
            for identifier, data, blind, element in zip(chunk, inputs, blinds, evaluated, strict=True)
        ]

    def lookup(self, applicant: Applicant) -> LookupResult:
        """The entry-audit verdict for one applicant (two calls: Tokenize, Lookup).

        Example:
            >>> client.lookup(Applicant(Role.ANCHOR, (normalize("cn_ric", "11010519491231002X"),))).verdict  # doctest: +SKIP
            <Verdict.CLEAR: 1>
        """
        request = registry_pb2.LookupRequest(applicant=self._applicant(applicant, self.tokenize(applicant.identifiers)))
        return _convert.lookup_result(self._call("Lookup", self._stub.Lookup, request))

    def lookup_batch(self, applicants: Sequence[Applicant]) -> list[LookupResult]:
        """Verdicts for many applicants, one per applicant, in order.

        Example:
            >>> [r.verdict for r in client.lookup_batch([a1, a2])]  # doctest: +SKIP
            [<Verdict.CLEAR: 1>, <Verdict.DENY: 3>]
        """
        tokens = iter(self.tokenize([i for a in applicants for i in a.identifiers]))
        messages = [self._applicant(a, [next(tokens) for _ in a.identifiers]) for a in applicants]
        results: list[LookupResult] = []
        for start in range(0, len(messages), LOOKUP_BATCH_LIMIT):
            request = registry_pb2.LookupBatchRequest(applicants=messages[start : start + LOOKUP_BATCH_LIMIT])
            response = self._paced("LookupBatch", self._stub.LookupBatch, request)
            results.extend(_convert.lookup_result(r) for r in response.results)
        return results

    def submit_report(self, report: NewReport) -> Receipt:
        """Tokenize, sign (DSSE, Ed25519) and submit a report; safe to repeat with the same `NewReport`.

        Example:
            >>> receipt = client.submit_report(NewReport(  # doctest: +SKIP
            ...     role=Role.MERCHANT, identifiers=(normalize("cn_ric", "11010519491231002X"),),
            ...     category=Category.COUNTERFEIT_OR_SUBSTANDARD_GOODS, severity=Severity.SEVERE,
            ...     summary="sold counterfeit cosmetics", platform_action="store closed",
            ...     evidence_sha256=hashlib.sha256(evidence).digest()))
        """
        envelope = self.sign_report(report)
        request = registry_pb2.SubmitReportRequest(envelope=envelope)
        return _convert.receipt(self._call("SubmitReport", self._stub.SubmitReport, request))

    def sign_report(self, report: NewReport) -> bytes:
        """The DSSE envelope bytes `submit_report` sends (tokenizes the identifiers)."""
        return self.sign_tokenized(report, self.tokenize(report.identifiers))

    def sign_tokenized(self, report: NewReport, tokens: Sequence[Token]) -> bytes:
        """The envelope of a report whose identifiers `tokenize` has already turned into `tokens` (in order):
        many reports, one Tokenize call.

        Example:
            >>> tokens = client.tokenize(report.identifiers)  # doctest: +SKIP
            >>> envelope = client.sign_tokenized(report, tokens)  # doctest: +SKIP
        """
        if [t.type for t in tokens] != [i.type for i in report.identifiers]:
            raise ValueError("sign_tokenized: give one token per identifier of the report, in the same order")
        payload = types_pb2.ReportPayload(
            report_id=report.report_id,
            reporter=self.credentials.name,
            registry=self.credentials.registry,
            created_at=datetime_to_timestamp(report.created_at),
            role=PROTOCOL_ENUMS.to_proto(report.role),
            identifiers=[
                types_pb2.IdentifierToken(type=PROTOCOL_ENUMS.to_proto(t.type), token=t.value) for t in tokens
            ],
            category=PROTOCOL_ENUMS.to_proto(report.category),
            severity=PROTOCOL_ENUMS.to_proto(report.severity),
            occurred_at=datetime_to_timestamp(report.occurred_at),
            platform_action=report.platform_action,
            summary=report.summary,
            display_name=report.display_name,
            evidence_sha256=report.evidence_sha256,
        )
        body = payload.SerializeToString(deterministic=True)
        return dsse.sign_envelope(self.credentials.signing_seed, dsse.REPORT_PAYLOAD_TYPE, body)

    def retract_report(self, report_id: str, reason: str, *, created_at: datetime | None = None) -> Report:
        """Withdraw one of this member's reports with a signed retraction; safe to repeat.

        A listing that no other platform's accepted report supports is lifted.

        Example:
            >>> client.retract_report(receipt.report_id, "wrong account: a namesake").status  # doctest: +SKIP
            <ReportStatus.RETRACTED: 'RETRACTED'>
        """
        payload = types_pb2.RetractionPayload(
            report_id=report_id,
            reporter=self.credentials.name,
            registry=self.credentials.registry,
            created_at=datetime_to_timestamp(created_at or datetime.now(UTC).replace(microsecond=0)),
            reason=reason,
        )
        envelope = dsse.sign_envelope(
            self.credentials.signing_seed, dsse.RETRACTION_PAYLOAD_TYPE, payload.SerializeToString(deterministic=True)
        )
        request = registry_pb2.RetractReportRequest(envelope=envelope)
        return _convert.report(self._call("RetractReport", self._stub.RetractReport, request))

    def get_report(self, report_id: str) -> Report:
        """One of this member's own reports, with its status and the stored envelope."""
        request = registry_pb2.GetReportRequest(report_id=report_id)
        return _convert.report(self._call("GetReport", self._stub.GetReport, request))

    def record_opinion(self, listing_id: str, opinion: Opinion, reason: str = "") -> OpinionReceipt:
        """Say whether a listing your own entry audit matched holds up (DISPUTED needs a reason).

        One opinion per platform and listing; a later one replaces it. Safe to repeat.

        Example:
            >>> match = client.lookup(applicant).matches[0]  # doctest: +SKIP
            >>> client.record_opinion(match.listing_id, Opinion.DISPUTED, "ID card photo belongs to a namesake")  # doctest: +SKIP
        """
        request = registry_pb2.RecordOpinionRequest(listing_id=listing_id, opinion=PROTOCOL_ENUMS.to_proto(opinion), reason=reason)
        return _convert.opinion_receipt(self._call("RecordOpinion", self._stub.RecordOpinion, request))

    def watch_changes(self, cursor_file: str | os.PathLike[str], *, stream_seconds: float = 300.0) -> Iterator[ListingChange]:
        """Every listing change after the one saved in `cursor_file`, as they happen; runs until closed.

        A change's cursor is saved when the loop asks for the next one, that
        is once the caller has handled it: after a crash or a restart (of
        either side) the watch resumes with the first change not yet handled.
        Each stream lasts at most `stream_seconds` and is then reopened; lost
        connections are reopened with backoff; a failed TLS handshake (credentials of another
        registry) raises RPCError instead, since no reopening can mend it.

        Example:
            >>> for change in client.watch_changes("jpr-changes.cursor"):  # doctest: +SKIP
            ...     rescreen(my_users_with_tokens(change.tokens), change)
        """
        cursor = CursorFile(cursor_file)
        backoff = self._retry.initial_backoff
        while True:
            request = registry_pb2.WatchChangesRequest(cursor=cursor.load())
            try:
                for message in self._stub.WatchChanges(request, timeout=stream_seconds):
                    change = _convert.listing_change(message)
                    yield change
                    cursor.save(change.cursor)
                    backoff = self._retry.initial_backoff
            except grpc.RpcError as error:
                status = error.code()
                failure = RPCError.from_grpc(error, "WatchChanges")
                if transport.handshake_failed(failure):  # another registry's CA: reopening would fail forever
                    raise RPCError(status, transport.handshake_message(self.credentials.endpoint, failure.message), "WatchChanges") from None
                if status not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    raise failure from None
                if status is not grpc.StatusCode.DEADLINE_EXCEEDED:
                    time.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, self._retry.max_backoff)

    @property
    def _log(self) -> LogReader:
        if self._log_reader is None:
            from jpr_client.log_reader import LogReader

            self._log_reader = LogReader(self._channel, self.credentials, self._monitor_config, self._call)
        return self._log_reader

    def checkpoint(self) -> Checkpoint:
        """The registry's newest checkpoint, once verified: signed by the log key the credentials pin, cosigned
        by the witnesses `MonitorConfig` requires, and consistent with every checkpoint this client (and its
        state file) verified before. Raises LogForkError, LogRollbackError, LogSignatureError or
        WitnessQuorumError (all TransparencyError) otherwise, and keeps the state as it was.

        Call it regularly (every few minutes): a member that follows the log sees a rewrite of it.

        Example:
            >>> with RegistryClient(credentials, monitor=MonitorConfig(state_file="jpr-log.state")) as client:  # doctest: +SKIP
            ...     client.checkpoint().size
            1042
        """
        return self._log.checkpoint().checkpoint

    def prove_receipt(self, receipt: Receipt) -> LogProof:
        """Prove that the log recorded this submission (its report id and envelope SHA-256) in a verified checkpoint.

        Waits up to `MonitorConfig.proof_wait` seconds for a checkpoint covering a report just submitted.
        Raises LogProofError when the registry's event, commitment or inclusion proof disagrees.

        Example:
            >>> proof = client.prove_receipt(client.submit_report(report))  # doctest: +SKIP
            >>> proof.leaf_index < proof.checkpoint.size  # doctest: +SKIP
            True
        """
        if receipt.event_seq == 0:
            raise LogProofError(f"the receipt of report {receipt.report_id} names no log event (a registry without a transparency log?)")
        from jpr_client.transparency.proofs import check_receipt

        proof = self._log.prove(f"the receipt of report {receipt.report_id}", event_seq=receipt.event_seq)
        check_receipt(proof, receipt)
        return proof

    def prove_change(self, change: ListingChange) -> LogProof:
        """Prove that the log recorded this changes-feed entry, with the listing's status, end and severity it shows.

        Example:
            >>> for change in client.watch_changes("jpr-changes.cursor"):  # doctest: +SKIP
            ...     client.prove_change(change)
            ...     rescreen(change)
        """
        if not change.cursor.isdigit():
            raise LogProofError(f"change cursor {change.cursor!r} is not an event sequence number")
        from jpr_client.transparency.proofs import check_change

        proof = self._log.prove(f"change {change.cursor}", event_seq=int(change.cursor))
        check_change(proof, change)
        return proof

    def prove_match(self, match: Match) -> LogProof:
        """Prove that a DENY or REVIEW rests on the listing's newest state in the log: the status its reason
        implies, its end and its severity. A listing changed since the lookup fails: look up again.

        Example:
            >>> result = client.lookup(applicant)  # doctest: +SKIP
            >>> proofs = [client.prove_match(m) for m in result.matches if m.listing_id]  # doctest: +SKIP
        """
        if not match.listing_id:
            raise LogProofError(f"the match on subject {match.subject_id} ({match.reason.name}) names no listing to prove")
        from jpr_client.transparency.proofs import check_match

        proof = self._log.prove(f"the match on listing {match.listing_id}", listing_id=match.listing_id)
        check_match(proof, match)
        return proof

    def witness(self, cosigner: Cosigner, state_file: str | os.PathLike[str]) -> Checkpoint:
        """As a witness: cosign the registry's newest checkpoint and send the cosignature (AddCosignature).

        The checkpoint must be signed by the log key and consistent with the last one this witness cosigned,
        kept in `state_file` (written before the cosignature is sent); otherwise LogForkError or LogRollbackError,
        and this witness never cosigns it. Returns the checkpoint cosigned.

        Example:
            >>> cosigner = Cosigner.from_key_string(Path("witness.key").read_text().strip())  # doctest: +SKIP
            >>> client.witness(cosigner, "witness.state.json").size  # doctest: +SKIP
            1042
        """
        return self._log.witness(cosigner, state_file)

    @staticmethod
    def _applicant(applicant: Applicant, tokens: Sequence[Token]) -> registry_pb2.Applicant:
        return registry_pb2.Applicant(
            role=PROTOCOL_ENUMS.to_proto(applicant.role),
            identifiers=[types_pb2.IdentifierToken(type=PROTOCOL_ENUMS.to_proto(t.type), token=t.value) for t in tokens],
        )

    def _call(self, method: str, stub: Callable[..., R], request: Any) -> R:
        return call(method, stub, request, self._timeout)

    def _paced(self, method: str, stub: Callable[..., R], request: Any) -> R:
        """A call that waits out the registry's rate limit (its retry delay) instead of losing the work
        done so far: a `lookup_batch` larger than the member's burst completes at the member's rate."""
        waited = 0.0
        while True:
            try:
                return self._call(method, stub, request)
            except RPCError as error:
                delay = error.retry_after
                if error.status is not grpc.StatusCode.RESOURCE_EXHAUSTED or delay is None:
                    raise
                if waited + delay > self._retry.max_pushback_wait:
                    raise
            time.sleep(delay)
            waited += delay


def verify_evaluation(pinned: bytes, blinded: Sequence[bytes], evaluated: Sequence[bytes], proof: bytes) -> None:
    """Raise TokenProofError unless `proof` shows every element evaluated under the pinned key.

    Example:
        >>> verify_evaluation(credentials.pinned_oprf_public_key, blinded, evaluated, response.proof)  # doctest: +SKIP
    """
    try:
        verified = oprf.verify_proof(pinned, blinded, evaluated, proof)
    except oprf.OprfError as error:
        raise TokenProofError(f"the registry's answer is malformed: {error}") from None
    if not verified:
        raise TokenProofError(
            f"the registry's proof does not hold for the pinned OPRF public key {pinned.hex()}: "
            "it evaluated under another key (a wrong oprf.key, or credentials from another registry); no token was computed"
        )


def call(method: str, stub: Callable[..., R], request: Any, timeout: float) -> R:
    """One call whose deadline covers every attempt the channel's retry policy makes; errors as RPCError."""
    try:
        return stub(request, timeout=timeout)
    except grpc.RpcError as error:
        raise RPCError.from_grpc(error, method) from None


# Ping during calls (a long watch) every 30 s, so a dead connection is noticed within 40 s.
# The registry refuses pings more often than every 10 s.
KEEPALIVE_OPTIONS = [("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000)]


def channel_target(endpoint: str) -> tuple[str, list[tuple[str, str]]]:
    """The gRPC target of an endpoint, and the channel options it needs (docs/protocol.md, "Endpoint").

    A list of replicas, `ADDRESS:PORT,ADDRESS:PORT`, becomes one `ipv4:` (or `ipv6:`) target; TLS then
    checks the first address against the server certificate, which every replica shares.

    Example:
        >>> channel_target("10.0.0.7:50051,10.0.0.8:50051")
        ('ipv4:10.0.0.7:50051,10.0.0.8:50051', [('grpc.ssl_target_name_override', '10.0.0.7')])
    """
    if "," not in endpoint:
        return endpoint, []
    entries = [entry.strip() for entry in endpoint.split(",")]
    hosts = [_replica_address(endpoint, entry) for entry in entries]
    families = {host.version for host in hosts}
    if len(families) > 1:
        raise ValueError(f"endpoint {endpoint!r} mixes IPv4 and IPv6 addresses; gRPC takes a list of one family")
    return f"ipv{families.pop()}:{','.join(entries)}", [("grpc.ssl_target_name_override", str(hosts[0]))]


def _replica_address(endpoint: str, entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of one `ADDRESS:PORT` (an IPv6 address in brackets) in an endpoint list."""
    host, _, port = entry.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        address = None
    if address is None or not port.isdigit() or (address.version == 6) != bracketed:
        raise ValueError(
            f"endpoint {endpoint!r}: {entry!r} is not ADDRESS:PORT with an IP address ([IPv6]:PORT); a list names "
            "replicas by address (for a DNS name with an address per replica, use dns:///NAME:PORT)"
        )
    return address


def secure_channel(credentials: Credentials, retry: RetryConfig = RetryConfig()) -> grpc.Channel:
    """A mutual-TLS channel to the registry named in `credentials`, retrying as `service_config(retry)` says,
    balanced round robin over every replica its endpoint names."""
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.ca_certificate.encode(),
        private_key=credentials.private_key.encode(),
        certificate_chain=credentials.certificate.encode(),
    )
    target, target_options = channel_target(credentials.endpoint)
    options = [*KEEPALIVE_OPTIONS, *target_options, ("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(service_config(retry)))]
    return grpc.secure_channel(target, channel_credentials, options=options)
