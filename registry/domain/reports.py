"""Submitting and reading signed reports.

A submission is checked in a fixed order and nothing is stored unless every
check passes: envelope shape, payload type, signing key, signature, and only
then the payload itself.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from jpr_client.api.jpr.v1 import types_pb2
from jpr_client.crypto import dsse
from jpr_client.model import Receipt, Report
from jpr_client.quoting import quoted
from registry.domain.admin import MAX_REASON
from registry.domain.errors import InvalidArgument, NotFound, PermissionDenied, RegistryError, Unauthenticated
from registry.domain.model import Caller, ReportPayload, SigningKey
from registry.domain.payload import created_at, declares_strong, parse_payload, parse_retraction, validate_payload
from registry.store.listings import ListingStore
from registry.store.members import MemberStore
from registry.store.reports import ReportStore, Submission

KeyFinder = Callable[[str], "tuple[int, SigningKey] | None"]  # key id -> (member id, key) of the caller, or None


class ReportService:
    def __init__(
        self,
        reports: ReportStore,
        members: MemberStore,
        *,
        registry_name: str,
        max_clock_skew: timedelta,
        clock: Callable[[], datetime],
        listings: ListingStore,
    ) -> None:
        self._listings = listings
        self._reports = reports
        self._members = members
        self._registry_name = registry_name
        self._skew = max_clock_skew
        self._clock = clock

    def submit(self, caller: Caller, envelope_bytes: bytes) -> Receipt:
        envelope = _open(envelope_bytes, dsse.REPORT_PAYLOAD_TYPE, "a report")
        payload_sha256 = hashlib.sha256(envelope.payload).digest()
        # The same signed bytes again: the stored receipt, whatever happened to the key since.
        # Else the key the envelope names, read with it (one read transaction for both).
        found = self._reports.receipt_or_key(caller.name, payload_sha256, envelope.signatures[0].keyid)
        if isinstance(found, Receipt):
            return found
        key = found
        checked = self._checked(caller, envelope, envelope_bytes, payload_sha256, lambda _key_id: key)
        return self._reports.submit(checked, now=self._clock())

    def check_batch(self, caller: Caller, envelopes: Sequence[bytes]) -> list[Submission | RegistryError]:
        """Every check `submit` makes of a new report, in the same order, for each envelope of
        one caller: its submission, or why it is refused. Nothing is stored; each key is read once."""
        keys = functools.cache(functools.partial(self._members.signing_key, caller.name))
        results: list[Submission | RegistryError] = []
        for envelope_bytes in envelopes:
            try:
                envelope = _open(envelope_bytes, dsse.REPORT_PAYLOAD_TYPE, "a report")
                results.append(self._checked(caller, envelope, envelope_bytes, hashlib.sha256(envelope.payload).digest(), keys))
            except RegistryError as error:
                results.append(error)
        return results

    def _checked(
        self, caller: Caller, envelope: dsse.Envelope, envelope_bytes: bytes, payload_sha256: bytes, keys: KeyFinder | None = None
    ) -> Submission:
        member_id, key = self._verify(caller, envelope, keys)
        message = parse_payload(envelope.payload)
        self._check_origin(caller, key, message)
        payload = validate_payload(message)
        self._check_times(payload)
        return Submission(
            payload=payload,
            member_id=member_id,
            key_id=key.key_id,
            envelope=envelope_bytes,
            envelope_sha256=hashlib.sha256(envelope_bytes).digest(),
            payload_sha256=payload_sha256,
        )

    def retract(self, caller: Caller, envelope_bytes: bytes) -> Report:
        """The reporter's signed withdrawal of its own report; checked like a report."""
        envelope = _open(envelope_bytes, dsse.RETRACTION_PAYLOAD_TYPE, "a retraction")
        _, key = self._verify(caller, envelope)
        retraction = parse_retraction(envelope.payload)
        self._check_origin(caller, key, retraction)
        if not retraction.reason.strip() or len(retraction.reason) > MAX_REASON:
            raise InvalidArgument(f"payload.reason is required, at most {MAX_REASON} characters: say why the report is withdrawn")
        return self._listings.retract(
            retraction.report_id, caller.name, envelope=envelope_bytes, reason=retraction.reason, now=self._clock()
        )

    def _verify(self, caller: Caller, envelope: dsse.Envelope, keys: KeyFinder | None = None) -> tuple[int, SigningKey]:
        signature = envelope.signatures[0]
        member_id, key = self._caller_key(caller, signature.keyid, keys)
        if not dsse.verify(key.public_key, envelope.payload_type, envelope.payload, signature.sig):
            raise Unauthenticated(f"the signature does not verify under key {key.key_id} (it is computed over the DSSE PAE bytes)")
        return member_id, key

    def get(self, caller: Caller, report_id: str) -> Report:
        """A member reads only its own reports; others look exactly like missing ones."""
        try:
            report = self._reports.get(report_id)
        except NotFound:
            report = None
        if report is None or report.reporter != caller.name:
            raise NotFound(f"you have no report {quoted(report_id)}")
        return report

    def _caller_key(self, caller: Caller, key_id: str, keys: KeyFinder | None) -> tuple[int, SigningKey]:
        found = keys(key_id) if keys is not None else self._members.signing_key(caller.name, key_id)
        if found is None:
            raise PermissionDenied(f"key id {quoted(key_id)} is not one of member {quoted(caller.name)}'s signing keys")
        key = found[1]
        if key.revoked_at is not None:
            raise Unauthenticated(f"key {key_id} was revoked at {key.revoked_at.isoformat()}; sign with a current key")
        return found

    def _check_origin(self, caller: Caller, key: SigningKey, message: types_pb2.ReportPayload | types_pb2.RetractionPayload) -> None:
        """Who signed, when, for whom: checked before any field of the payload is validated."""
        created = created_at(message)
        if created < key.valid_from - self._skew:
            raise Unauthenticated(
                f"key {key.key_id} was not valid at created_at {created.isoformat()} "
                f"(it is valid from {key.valid_from.isoformat()})"
            )
        if key.valid_until is not None and (created >= key.valid_until or self._clock() >= key.valid_until + self._skew):
            raise Unauthenticated(
                f"key {key.key_id} is valid until {key.valid_until.isoformat()}; sign new reports with a current key"
            )
        if message.reporter != caller.name:
            raise PermissionDenied(f"payload.reporter is {quoted(message.reporter)} but the caller is {quoted(caller.name)}")
        if message.registry != self._registry_name:
            raise InvalidArgument(
                f"payload.registry is {quoted(message.registry)}; this registry is {self._registry_name!r} (no cross-registry replay)"
            )
        if isinstance(message, types_pb2.ReportPayload) and not declares_strong(message):
            raise InvalidArgument(
                "payload.identifiers: at least one strong identifier (cn_ric, cn_uscc or passport) is required"
            )

    def _check_times(self, payload: ReportPayload) -> None:
        latest = self._clock() + self._skew
        if payload.created_at > latest:
            raise InvalidArgument(f"payload.created_at {payload.created_at.isoformat()} is in the future; check the clock")
        if payload.occurred_at is not None and payload.occurred_at > latest:
            raise InvalidArgument(f"payload.occurred_at {payload.occurred_at.isoformat()} is in the future")


def _open(envelope_bytes: bytes, payload_type: str, what: str) -> dsse.Envelope:
    """The envelope's shape, its payload type and its single signature, in that order."""
    try:
        envelope = dsse.parse_envelope(envelope_bytes)
    except dsse.EnvelopeError as error:
        raise InvalidArgument(f"envelope: {error}") from error
    if envelope.payload_type != payload_type:
        raise InvalidArgument(f"payloadType {quoted(envelope.payload_type)} is not {what}; expected {payload_type!r}")
    if len(envelope.signatures) != 1:
        raise InvalidArgument(f"{what} carries exactly one signature, this envelope has {len(envelope.signatures)}")
    return envelope
