"""The transparency log over real gRPC and TLS: every event a leaf, signed checkpoints, proofs, witnesses."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, log_pb2, log_pb2_grpc, registry_pb2
from jpr_client.client import secure_channel
from jpr_client.credentials import CredentialsError
from jpr_client.transparency import merkle
from jpr_client.transparency.checkpoint import Checkpoint
from jpr_client.transparency.cosignature import Cosigner, generate_witness_key
from jpr_client.transparency.entry import LogEvent, commitment
from jpr_client.transparency.note import open_note
from registry.cli.main import main
from registry.datadir import LOG_KEY, DataDir, DataDirError
from registry.server.app import start
from registry.settings import load_settings
from registry.store import events
from registry.store.models import EventRow, LogLeafRow
from tests.conftest import AdminClient, REGISTRY_NAME, Registry
from tests.integration.log_checks import check_log
from tests.integration.test_replicas import new_report, valid_ric


class Log:
    """A TransparencyLog stub for one caller."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.channel = secure_channel(credentials)
        self.stub = log_pb2_grpc.TransparencyLogStub(self.channel)

    def checkpoint(self, **fields: object) -> log_pb2.Checkpoint:
        return self.stub.GetCheckpoint(log_pb2.GetCheckpointRequest(**fields), timeout=10)  # type: ignore[arg-type]

    def entry(self, **fields: object) -> log_pb2.LogEntry:
        return self.stub.GetLogEntry(log_pb2.GetLogEntryRequest(**fields), timeout=10)  # type: ignore[arg-type]

    def covering(self, size: int, timeout: float = 15.0) -> log_pb2.Checkpoint:
        """The newest checkpoint once it covers `size` leaves (the registry signs one a second; a registry
        just started answers NOT_FOUND until its first pass has signed one)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                newest = self.checkpoint()
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                    raise
                newest = log_pb2.Checkpoint()
            if newest.tree_size >= size:
                return newest
            assert time.monotonic() < deadline, f"no checkpoint of {size} leaves in {timeout} s (newest: {newest.tree_size})"
            time.sleep(0.05)


@pytest.fixture
def logs(registry: Registry) -> Iterator[Callable[[Credentials], Log]]:
    opened: list[Log] = []

    def open_log(credentials: Credentials) -> Log:
        opened.append(Log(credentials.with_endpoint(registry.endpoint)))
        return opened[-1]

    yield open_log
    for log in opened:
        log.channel.close()


def event_count(registry: Registry) -> int:
    with registry.database.read() as conn:
        return int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())


def sdk_event(message: log_pb2.LogEvent) -> LogEvent:
    return LogEvent(
        seq=message.seq, kind=message.kind, occurred_at=message.occurred_at.ToDatetime(tzinfo=UTC),
        actor=message.actor, report_id=message.report_id, subject_id=message.subject_id, listing_id=message.listing_id,
        detail=json.loads(message.detail_json), salt=message.salt,
    )


def verified_root(log: Log, checkpoint: log_pb2.Checkpoint) -> Checkpoint:
    parsed = Checkpoint.parse(open_note(checkpoint.note, [log.credentials.log_verifier]).text)
    assert (parsed.size, parsed.root_hash, parsed.origin) == (checkpoint.tree_size, checkpoint.root_hash, REGISTRY_NAME)
    return parsed


def code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The status and message a call is refused with (a stub's grpc.RpcError, or the test admin's RPCError)."""
    with pytest.raises((grpc.RpcError, RPCError)) as refused:
        call()
    if isinstance(refused.value, RPCError):
        return refused.value.status, refused.value.message
    return refused.value.code(), refused.value.details()  # type: ignore[attr-defined]


def submit_many(registry: Registry, admin: AdminClient, platforms: list[Credentials], count: int) -> list[registry_pb2.ReportReceipt]:
    """Reports from several members at once, half of them accepted and some rejected while others arrive."""
    clients = [RegistryClient(p.with_endpoint(registry.endpoint)) for p in platforms]
    try:
        envelopes = [clients[i % len(clients)].sign_report(new_report([valid_ric(i % 12)], [])) for i in range(count)]

        def submit(job: tuple[int, bytes]) -> registry_pb2.ReportReceipt:
            index, envelope = job
            receipt = clients[index % len(clients)]._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=30)
            if index % 2 == 0:
                admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, reason="verified"))
            elif index % 5 == 0:
                admin.call("RejectReport", admin_pb2.RejectReportRequest(report_id=receipt.report_id, reason="no evidence"))
            return receipt

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(submit, enumerate(envelopes)))
    finally:
        for client in clients:
            client.close()


def test_every_event_is_one_leaf_and_every_checkpoint_and_proof_verifies(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log], database_url: str,
) -> None:
    platforms = [member("platform-a"), member("platform-b")]
    first = logs(admin.credentials).covering(event_count(registry))
    submit_many(registry, admin, platforms, 40)
    log = logs(admin.credentials)
    newest = log.covering(event_count(registry))
    root = verified_root(log, newest).root_hash
    leaves, checkpoints = check_log(database_url, admin.credentials.log_verifier)
    assert leaves == newest.tree_size and checkpoints >= 2
    for index in range(newest.tree_size):
        entry = log.entry(leaf_index=index)
        assert commitment(sdk_event(entry.event)) == entry.commitment, "the admin sees each event with its salt"
        merkle.verify_inclusion(merkle.leaf_hash(entry.commitment), index, newest.tree_size, list(entry.inclusion_proof), root)
    proof = log.stub.GetConsistencyProof(log_pb2.GetConsistencyProofRequest(first=first.tree_size), timeout=10)
    assert (proof.first, proof.second) == (first.tree_size, newest.tree_size)
    merkle.verify_consistency(first.tree_size, newest.tree_size, list(proof.proof), first.root_hash, root)


def test_a_receipt_names_the_leaf_that_commits_to_its_envelope_even_when_sent_again(
    registry: Registry, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log],
) -> None:
    platform = member("platform-a")
    with RegistryClient(platform.with_endpoint(registry.endpoint)) as client:
        envelope = client.sign_report(new_report([valid_ric(1)], []))
        receipt = client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=10)
        again = client._stub.SubmitReport(registry_pb2.SubmitReportRequest(envelope=envelope), timeout=10)
    assert receipt.event_seq > 0 and again.event_seq == receipt.event_seq
    log = logs(platform)
    newest = log.covering(event_count(registry))
    entry = log.entry(event_seq=receipt.event_seq)
    event = sdk_event(entry.event)
    assert (event.kind, event.report_id, event.actor) == ("report.submitted", receipt.report_id, "member:platform-a")
    assert event.detail["envelope_sha256"] == hashlib.sha256(envelope).hexdigest() == receipt.envelope_sha256.hex()
    assert commitment(event) == entry.commitment
    merkle.verify_inclusion(merkle.leaf_hash(entry.commitment), entry.leaf_index, entry.tree_size, list(entry.inclusion_proof),
                            verified_root(log, newest).root_hash)


def test_a_member_reads_its_own_events_and_listings_but_only_the_commitment_of_others(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log],
) -> None:
    a, b = member("platform-a"), member("platform-b")
    with RegistryClient(a.with_endpoint(registry.endpoint)) as client:
        receipt = client.submit_report(new_report([valid_ric(2)], []))
    accepted = admin.call("AcceptReport", admin_pb2.AcceptReportRequest(report_id=receipt.report_id, reason="verified"))
    listing_id = accepted.listing.listing_id  # type: ignore[attr-defined]
    log_a, log_b = logs(a), logs(b)
    newest = log_b.covering(event_count(registry))
    root = verified_root(log_b, newest).root_hash
    theirs = log_b.entry(event_seq=receipt.event_seq)
    assert not theirs.HasField("event"), "another member's report is not shown to b"
    merkle.verify_inclusion(merkle.leaf_hash(theirs.commitment), theirs.leaf_index, newest.tree_size, list(theirs.inclusion_proof), root)
    assert log_a.entry(event_seq=receipt.event_seq).event.kind == "report.submitted"
    for log in (log_a, log_b):
        listed = log.entry(listing_id=listing_id)
        assert listed.event.kind == "listing.created" and listed.event.listing_id == listing_id
        assert commitment(sdk_event(listed.event)) == listed.commitment
    accepted_seq = next(s for s in range(receipt.event_seq, receipt.event_seq + 10)
                        if logs(admin.credentials).entry(event_seq=s).event.kind == "report.accepted")
    own_accept = log_a.entry(event_seq=accepted_seq).event
    assert json.loads(own_accept.detail_json)["status"] == "ACCEPTED", "a's report's decision, with its resulting status"
    assert not log_b.entry(event_seq=accepted_seq).HasField("event")


def test_bad_sizes_and_unknown_entries_are_refused_with_what_to_ask_instead(
    registry: Registry, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log],
) -> None:
    log = logs(member("platform-a"))
    size = log.covering(1).tree_size
    refused = {
        "beyond": code(lambda: log.entry(leaf_index=0, tree_size=size + 5)),
        "proof beyond": code(lambda: log.stub.GetConsistencyProof(log_pb2.GetConsistencyProofRequest(first=1, second=size + 5), timeout=5)),
        "backwards": code(lambda: log.stub.GetConsistencyProof(log_pb2.GetConsistencyProofRequest(first=size, second=1), timeout=5)),
        "no seq": code(lambda: log.entry(event_seq=10**9)),
        "no leaf": code(lambda: log.entry(leaf_index=size + 1, tree_size=size)),
        "not a listing": code(lambda: log.entry(listing_id="X1")),
        "no listing": code(lambda: log.entry(listing_id="L999")),
        "nothing": code(lambda: log.entry()),
        "no checkpoint": code(lambda: log.checkpoint(tree_size=size + 7)),
        "too few": code(lambda: log.checkpoint(witnesses=["w"], min_cosignatures=2)),
        "uncosigned": code(lambda: log.checkpoint(witnesses=["w"], min_cosignatures=1)),
    }
    codes = {name: status for name, (status, _) in refused.items()}
    assert codes == {
        "beyond": grpc.StatusCode.INVALID_ARGUMENT, "proof beyond": grpc.StatusCode.INVALID_ARGUMENT,
        "backwards": grpc.StatusCode.INVALID_ARGUMENT, "no seq": grpc.StatusCode.NOT_FOUND,
        "no leaf": grpc.StatusCode.INVALID_ARGUMENT, "not a listing": grpc.StatusCode.INVALID_ARGUMENT,
        "no listing": grpc.StatusCode.NOT_FOUND, "nothing": grpc.StatusCode.INVALID_ARGUMENT,
        "no checkpoint": grpc.StatusCode.NOT_FOUND, "too few": grpc.StatusCode.INVALID_ARGUMENT,
        "uncosigned": grpc.StatusCode.NOT_FOUND,
    }
    assert f"beyond the newest checkpoint (tree size {size})" in refused["beyond"][1]
    assert "first (%d) is larger than second (1)" % size in refused["backwards"][1]


def test_witness_cosignatures_are_verified_stored_and_served(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log],
) -> None:
    key, verifier_key = generate_witness_key("witness.example/w1")
    witness = Cosigner.from_key_string(key)
    added = admin.call("AddWitness", admin_pb2.AddWitnessRequest(verifier_key=verifier_key, reason="the regulator's witness"))
    assert added.name == "witness.example/w1" and not added.HasField("removed_at")  # type: ignore[attr-defined]
    log = logs(member("platform-a"))
    newest = log.covering(event_count(registry))  # the witness.added event included
    body = open_note(newest.note, [log.credentials.log_verifier]).text
    cosigned = newest.note + witness.cosign(body, int(time.time()))
    served = log.stub.AddCosignature(log_pb2.AddCosignatureRequest(note=cosigned), timeout=10)
    assert served.note == cosigned
    required = log.checkpoint(witnesses=["witness.example/w1"], min_cosignatures=1)
    assert required.note == cosigned and required.tree_size == newest.tree_size

    stranger = Cosigner.from_key_string(generate_witness_key("stranger.example")[0])
    refusals = [
        code(lambda: log.stub.AddCosignature(log_pb2.AddCosignatureRequest(note=newest.note + stranger.cosign(body, 1)), timeout=5)),
        code(lambda: log.stub.AddCosignature(log_pb2.AddCosignatureRequest(note=newest.note + witness.cosign(body + "x\n", 1)), timeout=5)),
        code(lambda: log.stub.AddCosignature(log_pb2.AddCosignatureRequest(note=body + "\n" + witness.cosign(body, 1)), timeout=5)),
        code(lambda: admin.call("AddWitness", admin_pb2.AddWitnessRequest(verifier_key="not a key"))),
        code(lambda: admin.call("AddWitness", admin_pb2.AddWitnessRequest(verifier_key=log.credentials.log_public_key))),
    ]
    assert [status for status, _ in refusals] == [grpc.StatusCode.INVALID_ARGUMENT] * 5, refusals
    admin.call("RemoveWitness", admin_pb2.RemoveWitnessRequest(name="witness.example/w1", reason="retired"))
    status, message = code(lambda: log.stub.AddCosignature(log_pb2.AddCosignatureRequest(note=cosigned), timeout=5))
    assert status is grpc.StatusCode.INVALID_ARGUMENT and "no cosignature of a current witness" in message
    listed = admin.call("ListWitnesses", admin_pb2.ListWitnessesRequest()).witnesses  # type: ignore[attr-defined]
    assert [(w.name, w.HasField("removed_at")) for w in listed] == [("witness.example/w1", True)]
    kinds = [e.kind for e in admin.call("ListEvents", admin_pb2.ListEventsRequest()).events]  # type: ignore[attr-defined]
    assert "witness.added" in kinds and "witness.removed" in kinds


def test_an_event_of_a_rolled_back_savepoint_gets_no_leaf(registry: Registry, database_url: str) -> None:
    at = registry.clock()

    def work(session: Session) -> tuple[int | None, int | None, int | None]:
        kept = events.record(session, at=at, actor="registry", kind="test.kept")
        try:
            with session.begin_nested():
                undone = events.record(session, at=at, actor="registry", kind="test.undone")
                raise RuntimeError("undo it")
        except RuntimeError:
            pass
        # SQLite hands the undone seq to the next event: its leaf must commit to this one
        after = events.record(session, at=at, actor="registry", kind="test.after")
        return kept, undone, after

    kept, undone, after = registry.database.write(work)
    registry.running.checkpoints.sign_now()  # the sequencer numbers what committed
    with registry.database.read() as conn:
        leaves = dict(conn.execute(select(LogLeafRow.seq, LogLeafRow.leaf_index)).all())
        kinds = dict(conn.execute(select(EventRow.seq, EventRow.kind)).all())
    assert kept in leaves and after in leaves and "test.undone" not in kinds.values()
    assert undone == after or undone not in leaves
    check_log(database_url, registry.admin_credentials().log_verifier)


def test_a_data_directory_without_a_log_key_is_refused_until_init_adds_one(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "jpr-data"
    DataDir(data_dir).initialize(registry_name=REGISTRY_NAME, admin_name="admin", endpoint="127.0.0.1:0")
    (data_dir / LOG_KEY).unlink()
    settings = load_settings({"data_dir": data_dir, "listen": "127.0.0.1:0", "database_url": database_url}, environ={})
    with pytest.raises(DataDirError, match=f"`jpr init --data-dir {data_dir} --add-log-key`"):
        start(settings)
    assert main(["init", "--data-dir", str(data_dir), "--add-log-key"]) == 0
    assert (data_dir / LOG_KEY).stat().st_mode & 0o777 == 0o600
    assert DataDir(data_dir).log_signer().name == REGISTRY_NAME
    start(settings).stop(grace=None)


def test_credentials_refuse_a_malformed_log_key(tmp_path: Path, registry: Registry) -> None:
    credentials = registry.admin_credentials()
    assert credentials.log_verifier.key_string() == DataDir(registry.data_dir).log_public_key()
    path = tmp_path / "bad.credentials.json"
    data = json.loads(credentials.to_json())
    data["log_public_key"] = "jpr-test+00000000+AQ"
    path.write_text(json.dumps(data))
    with pytest.raises(CredentialsError, match="log_public_key"):
        Credentials.load(path)



def test_a_new_event_is_covered_by_a_signed_checkpoint_within_two_seconds(
    registry: Registry, member: Callable[[str], Credentials], logs: Callable[[Credentials], Log],
) -> None:
    platform = member("platform-a")
    log = logs(platform)
    with RegistryClient(platform.with_endpoint(registry.endpoint)) as client:
        receipt = client.submit_report(new_report([valid_ric(3)], []))
    covered = log.covering(event_count(registry), timeout=2.0)
    entry = log.entry(event_seq=receipt.event_seq)
    merkle.verify_inclusion(merkle.leaf_hash(entry.commitment), entry.leaf_index, covered.tree_size, list(entry.inclusion_proof),
                            verified_root(log, covered).root_hash)
