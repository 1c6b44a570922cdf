"""Verifiable tokens: the SDK accepts a Tokenize answer only with a proof under the pinned key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from jpr_client import (
    Applicant,
    Credentials,
    CredentialsError,
    RegistryClient,
    Role,
    TokenProofError,
    Verdict,
    normalize,
)
from jpr_client.api.jpr.v1 import registry_pb2, registry_pb2_grpc
from jpr_client.client import secure_channel, verify_evaluation
from jpr_client.crypto import oprf
from registry.datadir import DataDir, OPRF_KEY
from registry.server.app import RunningRegistry, start
from registry.settings import load_settings
from tests.conftest import AdminClient, Registry
from tests.integration.test_lookup import accept, report

RIC = "11010519491231002X"


@contextmanager
def replica_with_another_key(registry: Registry, tmp_path: Path, database_url: str) -> Iterator[RunningRegistry]:
    """A second replica on the same database whose data directory was restored with a wrong oprf.key."""
    restored = tmp_path / "restored-jpr-data"
    shutil.copytree(registry.data_dir, restored)
    (restored / OPRF_KEY).chmod(0o600)
    (restored / OPRF_KEY).write_text(oprf.generate_key().hex() + "\n")
    running = start(load_settings({"data_dir": restored, "listen": "127.0.0.1:0", "database_url": database_url}, environ={}))
    try:
        yield running
    finally:
        running.stop(grace=None)


def test_member_credentials_pin_the_public_half_of_the_registrys_oprf_key(registry: Registry, admin: AdminClient) -> None:
    platform = admin.add_member("platform-a")
    assert platform.pinned_oprf_public_key == oprf.public_key(DataDir(registry.data_dir).oprf_key())
    assert registry.admin_credentials().pinned_oprf_public_key == platform.pinned_oprf_public_key


def test_tokenize_answers_carry_a_proof_that_holds_for_the_pinned_key(admin: AdminClient) -> None:
    platform = admin.add_member("platform-a")
    with RegistryClient(platform) as client:
        tokens = client.tokenize([normalize("cn_ric", RIC), normalize("phone", "13800138000")])
    assert [len(t.value) for t in tokens] == [oprf.OUTPUT_SIZE] * 2


def test_sdk_refuses_tokens_when_credentials_pin_another_registrys_key(admin: AdminClient) -> None:
    other_registry_key = oprf.public_key(oprf.generate_key()).hex()
    platform = replace(admin.add_member("platform-a"), oprf_public_key=other_registry_key)
    with RegistryClient(platform) as client, pytest.raises(TokenProofError, match="does not hold for the pinned OPRF public key"):
        client.tokenize([normalize("cn_ric", RIC)])


def test_a_replica_restored_with_a_wrong_key_fails_loudly_instead_of_answering_clear(
    registry: Registry, admin: AdminClient, tmp_path: Path, database_url: str
) -> None:
    reporter, auditor = admin.add_member("platform-a"), admin.add_member("platform-b")
    with RegistryClient(reporter) as client:
        receipt = client.submit_report(report(("cn_ric", RIC)))
    accept(admin, receipt.report_id)
    applicant = Applicant(Role.ANCHOR, (normalize("cn_ric", RIC),))
    with RegistryClient(auditor) as client:
        assert client.lookup(applicant).verdict is Verdict.DENY
    with replica_with_another_key(registry, tmp_path, database_url) as wrong:
        with RegistryClient(auditor.with_endpoint(f"127.0.0.1:{wrong.port}")) as client, pytest.raises(TokenProofError):
            client.lookup(applicant)


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_a_proof_with_one_byte_flipped_is_refused(admin: AdminClient, position: int) -> None:
    platform = admin.add_member("platform-a")
    _, blinded = oprf.blind(oprf.token_input("cn_ric", RIC))
    with secure_channel(platform) as channel:
        response = registry_pb2_grpc.RegistryStub(channel).Tokenize(registry_pb2.TokenizeRequest(blinded_elements=[blinded]), timeout=10)
    pinned, evaluated = platform.pinned_oprf_public_key, list(response.evaluated_elements)
    verify_evaluation(pinned, [blinded], evaluated, response.proof)  # the untouched answer holds
    flipped = bytearray(response.proof)
    flipped[position] ^= 0x01
    with pytest.raises(TokenProofError):
        verify_evaluation(pinned, [blinded], evaluated, bytes(flipped))


def test_an_answer_without_a_proof_is_refused(admin: AdminClient) -> None:
    platform = admin.add_member("platform-a")
    _, blinded = oprf.blind(oprf.token_input("cn_ric", RIC))
    with secure_channel(platform) as channel:
        response = registry_pb2_grpc.RegistryStub(channel).Tokenize(registry_pb2.TokenizeRequest(blinded_elements=[blinded]), timeout=10)
    with pytest.raises(TokenProofError, match="proof is 0 bytes"):
        verify_evaluation(platform.pinned_oprf_public_key, [blinded], list(response.evaluated_elements), b"")


def test_credentials_written_before_tokens_were_verified_tell_the_member_to_ask_for_new_ones(admin: AdminClient) -> None:
    old = replace(admin.add_member("platform-a"), oprf_public_key="")
    with RegistryClient(old) as client, pytest.raises(CredentialsError, match="ask the association for new credentials"):
        client.tokenize([normalize("cn_ric", RIC)])


def test_a_credentials_file_with_a_malformed_pinned_key_is_refused_on_load(admin: AdminClient, tmp_path: Path) -> None:
    path = tmp_path / "platform-a.credentials.json"
    replace(admin.add_member("platform-a"), oprf_public_key="abcd").save(path)
    with pytest.raises(CredentialsError, match="oprf_public_key .* is not 32 bytes of hex"):
        Credentials.load(path)
