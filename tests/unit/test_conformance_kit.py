"""The conformance kit of docs/vectors/ and the protocol facts docs/protocol.md states, checked against the code.

Each test fails when a vector file or a table of the spec stops matching what the
SDK and the registry do, so that another language's client built from them
interoperates with this one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from jpr_client import Credentials, IdentifierType, InvalidIdentifier, RetryConfig, normalize
from jpr_client.client import service_config
from jpr_client.api.jpr.v1 import log_pb2, registry_pb2, types_pb2
from registry.cli.enrollment import EnrollmentRequest, Issued
from jpr_client.crypto import dsse
from registry.domain.errors import RegistryError
from registry.domain.payload import parse_payload, validate_payload
from registry.server.auth import RULES

ROOT = Path(__file__).parents[2]
KIT = ROOT / "docs" / "vectors"
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def load(name: str) -> Any:
    return json.loads((KIT / name).read_text(encoding="utf-8"))


def table(heading: str, after: str = "") -> list[list[str]]:
    """The cells of the first Markdown table after `heading` (and then `after`), header and rule left out."""
    text = PROTOCOL.split(heading, 1)[1]
    if after:
        text = text.split(after, 1)[1]
    lines = text[text.index("\n|") + 1 :].split("\n\n", 1)[0].splitlines()
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# --- normalization.json -------------------------------------------------------------------

PROBES: list[dict[str, str]] = load("normalization.json")["probes"]


@pytest.mark.parametrize("probe", PROBES, ids=[f"{p['type']}-{i}" for i, p in enumerate(PROBES)])
def test_each_normalization_probe_gives_its_value_or_its_refusal(probe: dict[str, str]) -> None:
    options = {"default_region": probe["default_region"]} if "default_region" in probe else {}
    if "value" in probe:
        assert normalize(probe["type"], probe["input"], **options).value == probe["value"]
        assert normalize(probe["type"], probe["value"], **options).value == probe["value"]  # a value is its own normal form
    else:
        with pytest.raises(InvalidIdentifier) as refused:
            normalize(probe["type"], probe["input"], **options)
        assert refused.value.reason == probe["error"]


def test_the_kit_probes_every_identifier_type_at_least_20_times_with_both_outcomes() -> None:
    counts = Counter((p["type"], "value" in p) for p in PROBES)
    for kind in IdentifierType:
        assert counts[kind.value, True] + counts[kind.value, False] >= 20, kind
        assert counts[kind.value, True] >= 5 and counts[kind.value, False] >= 5, kind
    assert all(("value" in p) != ("error" in p) for p in PROBES)


def test_the_kit_names_the_library_versions_its_probes_were_made_with() -> None:
    versions = load("normalization.json")["versions"]
    for distribution, version in versions.items():
        assert f"{distribution}=={version}" in (ROOT / "clients" / "python" / "pyproject.toml").read_text()  # the SDK pins them


# --- tokens.json ---------------------------------------------------------------------------


def test_every_jpr_token_vector_value_is_a_normalized_identifier_and_every_type_has_one() -> None:
    vectors = load("tokens.json")["jpr"]["vectors"]
    assert {v["type"] for v in vectors} == {t.value for t in IdentifierType}
    for vector in vectors:
        assert normalize(vector["type"], vector["value"]).value == vector["value"]


# --- payloads.json -------------------------------------------------------------------------

PAYLOADS = {p["name"]: p for p in load("payloads.json")["payloads"]}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_payload_vector_decodes_to_its_fields_and_validates(name: str) -> None:
    vector = PAYLOADS[name]
    message = parse_payload(bytes.fromhex(vector["bytes"]))
    assert message == json_format.ParseDict(vector["fields"], types_pb2.ReportPayload())
    validate_payload(message)


def test_the_all_fields_payload_sets_every_field_and_is_the_deterministic_serialization() -> None:
    vector = PAYLOADS["all_fields"]
    message = types_pb2.ReportPayload.FromString(bytes.fromhex(vector["bytes"]))
    assert {field.name for field, _ in message.ListFields()} == set(types_pb2.ReportPayload.DESCRIPTOR.fields_by_name)
    assert {i.type for i in message.identifiers} == set(types_pb2.IdentifierType.values()) - {0}
    assert message.SerializeToString(deterministic=True).hex() == vector["bytes"]


def test_the_explicit_defaults_payload_holds_present_empty_fields_and_decodes_like_its_canonical_bytes() -> None:
    vector = PAYLOADS["explicit_defaults"]
    written, canonical = bytes.fromhex(vector["bytes"]), bytes.fromhex(vector["canonical_bytes"])
    assert written != canonical
    for tag in (b"\x52\x00", b"\x5a\x00", b"\x62\x00", b"\x10\x00"):  # fields 10, 11, 12 empty; Timestamp.nanos 0
        assert tag in written and tag not in canonical
    assert parse_payload(written) == parse_payload(canonical)
    assert parse_payload(written).SerializeToString(deterministic=True) == canonical  # re-serializing would change the bytes


def test_the_spec_documents_default_valued_fields_and_names_the_vector() -> None:
    section = PROTOCOL.split("### 5.3 Serialization")[1].split("### 5.4")[0]
    assert "protobufjs" in section and "`explicit_defaults`" in section and "ALREADY_EXISTS" in section


# --- envelopes.json ------------------------------------------------------------------------

ENVELOPES = load("envelopes.json")
KEY = ENVELOPES["key"]


@pytest.mark.parametrize("vector", ENVELOPES["signed"], ids=lambda v: v["name"])
def test_each_signed_envelope_is_recomputed_from_key_and_payload(vector: dict[str, Any]) -> None:
    private, payload = bytes.fromhex(KEY["private_key"]), bytes.fromhex(vector["payload"])
    assert dsse.key_id(dsse.public_key(private)) == KEY["key_id"]
    assert dsse.pae(vector["payload_type"], payload).hex() == vector["pae"]
    assert dsse.sign(private, vector["payload_type"], payload).hex() == vector["signature"]
    assert dsse.sign_envelope(private, vector["payload_type"], payload).decode() == vector["envelope"]
    parsed = dsse.parse_envelope(vector["envelope"].encode())
    assert dsse.verify(bytes.fromhex(KEY["public_key"]), parsed.payload_type, parsed.payload, parsed.signatures[0].sig)


def test_the_signed_payload_vectors_are_the_payload_files() -> None:
    signed = {v["name"]: v["payload"] for v in ENVELOPES["signed"]}
    for name, vector in PAYLOADS.items():
        assert signed[name] == vector["bytes"]


REFUSED: list[dict[str, Any]] = ENVELOPES["refused"]


@pytest.mark.parametrize("vector", [v for v in REFUSED if v["stage"] == "envelope"], ids=lambda v: v["name"])
def test_a_refused_envelope_of_stage_envelope_fails_to_parse_with_its_message(vector: dict[str, Any]) -> None:
    with pytest.raises(dsse.EnvelopeError) as refused:
        dsse.parse_envelope(bytes.fromhex(vector["envelope_hex"]))
    assert vector["status"] == "INVALID_ARGUMENT"
    assert vector["message"] in f"envelope: {refused.value}"


@pytest.mark.parametrize("vector", [v for v in REFUSED if v["stage"] != "envelope"], ids=lambda v: v["name"])
def test_a_refused_envelope_of_a_later_stage_parses_and_fails_where_it_says(vector: dict[str, Any]) -> None:
    envelope = dsse.parse_envelope(bytes.fromhex(vector["envelope_hex"]))
    signature = envelope.signatures[0]
    verifies = dsse.verify(bytes.fromhex(KEY["public_key"]), envelope.payload_type, envelope.payload, signature.sig)
    stage = vector["stage"]
    if stage == "payload_type":
        assert envelope.payload_type != dsse.REPORT_PAYLOAD_TYPE
        return
    assert envelope.payload_type == dsse.REPORT_PAYLOAD_TYPE
    if stage == "signatures":
        assert len(envelope.signatures) != 1
        return
    assert len(envelope.signatures) == 1
    assert verifies is (stage != "signature"), "only signature vectors fail to verify under the kit's key"
    assert (signature.keyid == KEY["key_id"]) is (stage != "key")
    message = parse_payload(envelope.payload) if stage not in ("key", "signature", "payload") else None
    if stage in ("payload", "fields"):
        with pytest.raises(RegistryError) as refused:
            validate_payload(parse_payload(envelope.payload))
        assert vector["message"] in str(refused.value)
    elif stage == "time":
        assert message is not None and validate_payload(message)  # valid fields, refused against the clock


def test_the_refused_envelopes_cover_every_check_that_needs_no_stored_state() -> None:
    steps = {v["step"] for v in REFUSED} | {v["submit"].get("step") for v in ENVELOPES["signed"]}
    assert steps >= {1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
    assert len({v["name"] for v in REFUSED}) == len(REFUSED)


def test_an_envelope_with_a_utf8_byte_order_mark_is_refused_with_a_message_that_says_so() -> None:
    (bom,) = [v for v in REFUSED if v["name"] == "utf8_bom"]
    data = bytes.fromhex(bom["envelope_hex"])
    assert data.startswith(b"\xef\xbb\xbf") and dsse.parse_envelope(data[3:])  # the rest is a good envelope
    with pytest.raises(dsse.EnvelopeError, match="byte order mark"):
        dsse.parse_envelope(data)
    section = PROTOCOL.split("### 5.2 DSSE envelope")[1].split("### 5.3")[0]
    assert "**No byte order mark.**" in section and str(dsse.EnvelopeError(bom["message"].removeprefix("envelope: "))) in section


# --- service_config.json -------------------------------------------------------------------

SERVICES = {
    "jpr.v1.Registry": registry_pb2.DESCRIPTOR.services_by_name["Registry"],
}


def test_the_service_config_retries_only_unavailable_for_unary_methods_safe_to_repeat() -> None:
    config = load("service_config.json")
    assert config == service_config(RetryConfig())  # the file is what the SDK's channels carry
    (method_config,) = config["methodConfig"]
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert 2 <= policy["maxAttempts"] <= 5  # gRPC caps attempts at 5
    assert all(re.fullmatch(r"\d+(\.\d+)?s", policy[k]) for k in ("initialBackoff", "maxBackoff"))
    named = {f"/{n['service']}/{n['method']}" for n in method_config["name"]}
    registry = SERVICES["jpr.v1.Registry"]
    unary = {f"/jpr.v1.Registry/{m.name}" for m in registry.methods if not m.client_streaming and not m.server_streaming}
    admin_reads = {f"/jpr.v1.Admin/{m}" for m in (
        "ListMembers", "ListReports", "ListListings", "ListAppeals", "ListReviewQueue", "GetSubject", "ListEvents", "AuditAccess", "ListCertificates",
    )}
    idempotent = {"/jpr.v1.Admin/ImportReports"}  # a report id imported again changes nothing
    log = {f"/jpr.v1.TransparencyLog/{m.name}" for m in log_pb2.DESCRIPTOR.services_by_name["TransparencyLog"].methods}  # reads; a cosignature added twice is kept once
    assert named == unary | admin_reads | idempotent | log | {"/grpc.health.v1.Health/Check"}
    assert named <= set(RULES)


def test_the_spec_publishes_the_service_config_file_verbatim() -> None:
    section = PROTOCOL.split("**Retries: the service config.**")[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == load("service_config.json")


# --- section 2: the role table, the file formats ------------------------------------------


def test_the_specs_role_table_is_the_interceptors_rule_table() -> None:
    roles = ("member", "admin", "probe")
    documented: dict[str, frozenset[str]] = {}
    for service, methods, *allowed in table("**Who may call what.**"):
        (service_name,) = names(service)
        for method in names(methods):
            documented[f"/{service_name}/{method}"] = frozenset(r for r, yes in zip(roles, allowed, strict=True) if yes == "yes")
    assert documented == dict(RULES)


def test_the_specs_credentials_table_lists_exactly_what_a_credentials_file_holds() -> None:
    documented = [names(row[0])[0] for row in table("**Credentials file.**")]
    example = Credentials(registry="r", endpoint="e", role="member", name="n", ca_certificate="c", certificate="c", private_key="k")
    assert documented == list(json.loads(example.to_json()))


def test_the_specs_enrollment_tables_list_exactly_what_the_request_and_issued_files_hold(tmp_path: Path) -> None:
    rows = table("**Enrollment.**")
    EnrollmentRequest(name="shop-a", signing_public_key=bytes(32), csr_pem="csr").save(tmp_path / "request.json")
    Issued(name="shop-a", registry="r", endpoint="e", ca_certificate="c", certificate="c", key_id="k", oprf_public_key="o").save(tmp_path / "issued.json")
    for kind in ("request", "issued"):
        written = json.loads((tmp_path / f"{kind}.json").read_text())
        assert [names(member)[0] for file, member, _ in rows if file == kind] == list(written)
        assert written["kind"] == kind


# --- section 6: NOTICE_PERIOD in the verdict rules -----------------------------------------


def test_the_specs_verdict_table_gives_review_for_a_notice_period_match() -> None:
    verdicts = {names(row[0])[0]: row[1] for row in table("**Verdict**, the most serious")}
    assert "`NOTICE_PERIOD` match" in verdicts["VERDICT_REVIEW"]
    assert "NOTICE" not in verdicts["VERDICT_DENY"]
    section = PROTOCOL.split("## 6. Entry audits")[1].split("### 6.1")[0]
    assert "`MATCH_REASON_NOTICE_PERIOD` when the subject is in notice" in section


def test_a_strong_match_on_a_listing_in_its_notice_window_is_review_with_reason_notice_period() -> None:
    from jpr_client.model import Category, MatchReason, Role, Severity, Token, Verdict
    from registry.domain.verdict import Allegation, Hit, SubjectState, decide

    token = Token(type=IdentifierType.CN_RIC, value=bytes(64))
    allegation = Allegation(roles=frozenset({Role.MERCHANT}), categories=frozenset({Category.FRAUD}), severity=Severity.SEVERE, platforms=1)
    state = SubjectState(subject_id="S1", listed=allegation, active_listings=frozenset({1}), in_notice=True, listing_ref="L1")
    result = decide([token.value], {token.value: [Hit(subject=1, type=IdentifierType.CN_RIC, listing=1)]}, {1: state})
    assert result.verdict is Verdict.REVIEW and result.matches[0].reason is MatchReason.NOTICE_PERIOD
    assert result.matches[0].strong_match and result.matches[0].listing_id == "L1"


# --- section 8: RetractReport ----------------------------------------------------------------


def test_every_message_of_the_specs_retract_report_table_is_one_the_registry_sends() -> None:
    rows = table("**`Registry/RetractReport`**")
    assert {row[0] for row in rows} >= {"`INVALID_ARGUMENT`", "`PERMISSION_DENIED`", "`UNAUTHENTICATED`", "`FAILED_PRECONDITION`"}
    packages = (ROOT / "registry", ROOT / "clients" / "python" / "jpr_client")  # the server and the protocol code it builds on
    source = "\n".join(path.read_text(encoding="utf-8") for package in packages for path in package.rglob("*.py"))
    source = source.replace("{message.DESCRIPTOR.full_name}", "jpr.v1.RetractionPayload").replace("{what}", "a retraction")
    source = source.replace("{payload_type!r}", "'application/vnd.jpr.retraction.v1+protobuf'").replace("{MAX_REASON}", "2000")
    for _, _, message in rows:
        for template in names(message):
            for literal in re.split(r"\{[^}]*\}|'\{[^}]*\}'|\.\.\.|^payload\.created_at: ", template):
                assert literal.strip(" '") in source, (template, literal)
