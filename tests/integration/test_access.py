"""Mutual TLS and deny-by-default authorization: who may call what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jpr_client import Credentials, RPCError, RegistryClient
from jpr_client.api.jpr.v1 import admin_pb2, admin_pb2_grpc, log_pb2, registry_pb2, registry_pb2_grpc
from jpr_client.client import secure_channel
from registry.crypto import pki
from registry.datadir import DataDir, PROBE_CREDENTIALS
from registry.server.auth import RULES, allowed_roles
from tests.conftest import AdminClient, Registry

SERVICES = [
    registry_pb2.DESCRIPTOR.services_by_name["Registry"],
    admin_pb2.DESCRIPTOR.services_by_name["Admin"],
    log_pb2.DESCRIPTOR.services_by_name["TransparencyLog"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
]
REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED}


def every_method() -> list[tuple[str, Any]]:
    return [(f"/{service.full_name}/{method.name}", method) for service in SERVICES for method in service.methods]


def test_every_served_method_has_its_own_authorization_rule_and_unknown_ones_have_none() -> None:
    served = {path for path, _ in every_method()}
    assert served == set(RULES), f"methods without a rule: {sorted(served - set(RULES))}; rules for nothing: {sorted(set(RULES) - served)}"
    assert allowed_roles("/jpr.v1.Secret/Dump") == frozenset()
    assert allowed_roles("/jpr.v1.Registry/Dump") == frozenset()


def call(channel: grpc.Channel, path: str, method: Any) -> grpc.StatusCode:
    """Call `path` with an empty request; the status it ends with (OK, or the first message of a stream)."""
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    kind = (method.client_streaming, method.server_streaming)
    try:
        if kind == (False, False):
            channel.unary_unary(path, request_class.SerializeToString, response_class.FromString)(request_class(), timeout=5)
        elif kind == (False, True):
            next(iter(channel.unary_stream(path, request_class.SerializeToString, response_class.FromString)(request_class(), timeout=1)), None)
        else:
            stream = channel.stream_stream(path, request_class.SerializeToString, response_class.FromString)
            next(iter(stream(iter([request_class()]), timeout=2)), None)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_authorization_matrix_over_every_method_and_every_kind_of_caller(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    active, suspended = member("platform-a"), member("platform-b")
    admin.call("SuspendMember", admin_pb2.MemberStatusRequest(member="platform-b", reason="matrix"))
    ca_pem = registry.admin_credentials().ca_certificate.encode()
    stranger_ca = pki.create_ca("elsewhere")
    key_pem, csr_pem = pki.make_csr("admin", pki.ROLE_ADMIN)
    channels = {
        "no certificate": grpc.secure_channel(registry.endpoint, grpc.ssl_channel_credentials(root_certificates=ca_pem)),
        "another CA": grpc.secure_channel(registry.endpoint, grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=pki.issue_client_cert(stranger_ca, csr_pem, "admin", pki.ROLE_ADMIN))),
        "member": secure_channel(active),
        "suspended member": secure_channel(suspended),
        "admin": secure_channel(registry.admin_credentials()),
        "probe": secure_channel(Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint)),
    }
    roles = {"member": pki.ROLE_MEMBER, "admin": pki.ROLE_ADMIN, "probe": pki.ROLE_PROBE}
    wrong: list[str] = []
    try:
        for path, method in every_method():
            for who, channel in channels.items():
                status = call(channel, path, method)
                if who in ("no certificate", "another CA"):
                    expected_ok = status is grpc.StatusCode.UNAVAILABLE  # no TLS session at all
                elif who == "suspended member":
                    expected_ok = status is grpc.StatusCode.PERMISSION_DENIED
                elif roles[who] in RULES[path]:
                    expected_ok = status not in REFUSED  # past the gate: OK, or the method's own answer to an empty request
                else:
                    expected_ok = status is grpc.StatusCode.PERMISSION_DENIED
                if not expected_ok:
                    wrong.append(f"{path} as {who}: {status.name}")
    finally:
        for channel in channels.values():
            channel.close()
    assert not wrong, "\n".join(wrong)


def test_member_calling_an_admin_method_is_permission_denied(registry: Registry, member: Callable[[str], Credentials]) -> None:
    channel = secure_channel(member("platform-a"))
    with pytest.raises(grpc.RpcError) as caught:
        admin_pb2_grpc.AdminStub(channel).ListMembers(admin_pb2.ListMembersRequest(), timeout=10)
    channel.close()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "member 'platform-a'" in (caught.value.details() or "")


def test_admin_calling_a_member_method_is_permission_denied(registry: Registry) -> None:
    channel = secure_channel(registry.admin_credentials())
    with pytest.raises(grpc.RpcError) as caught:
        registry_pb2_grpc.RegistryStub(channel).Lookup(registry_pb2.LookupRequest(), timeout=10)
    channel.close()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_certificate_the_registry_was_never_given_is_unauthenticated(registry: Registry) -> None:
    ca = DataDir(registry.data_dir).issuer().ca()
    key_pem, csr_pem = pki.make_csr("ghost", pki.ROLE_MEMBER)
    ghost = Credentials(
        registry="jpr-test", endpoint=registry.endpoint, role="member", name="ghost",
        ca_certificate=ca.cert_pem.decode(), certificate=pki.issue_client_cert(ca, csr_pem, "ghost", pki.ROLE_MEMBER).decode(),
        private_key=key_pem.decode(),
    )
    with RegistryClient(ghost) as client, pytest.raises(RPCError) as caught:
        client.get_report("00000000-0000-0000-0000-000000000000")
    assert caught.value.status is grpc.StatusCode.UNAUTHENTICATED
    assert "never registered" in caught.value.message


def test_client_without_a_certificate_gets_no_service(registry: Registry) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=registry.admin_credentials().ca_certificate.encode())
    with grpc.secure_channel(registry.endpoint, credentials) as channel, pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)


def test_client_with_a_certificate_from_another_ca_gets_no_service(registry: Registry) -> None:
    stranger_ca = pki.create_ca("elsewhere")
    key_pem, csr_pem = pki.make_csr("admin", pki.ROLE_ADMIN)
    cert = pki.issue_client_cert(stranger_ca, csr_pem, "admin", pki.ROLE_ADMIN)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=registry.admin_credentials().ca_certificate.encode(), private_key=key_pem, certificate_chain=cert
    )
    with grpc.secure_channel(registry.endpoint, credentials) as channel, pytest.raises(grpc.RpcError) as caught:
        admin_pb2_grpc.AdminStub(channel).ListMembers(admin_pb2.ListMembersRequest(), timeout=5)
    assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)


def test_health_service_reports_serving(registry: Registry, admin: AdminClient) -> None:
    stub = health_pb2_grpc.HealthStub(admin.channel)
    for service in ("", "jpr.v1.Registry", "jpr.v1.Admin"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_registry_services(registry: Registry, admin: AdminClient) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(admin.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"jpr.v1.Registry", "jpr.v1.Admin", "grpc.health.v1.Health"} <= names


def reflected_methods(channel: grpc.Channel) -> list[tuple[str, Any]]:
    """Every method of every service the server's reflection lists."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = [s.name for r in responses for s in r.list_services_response.service]
    pool = descriptor_pool.Default()
    return [(f"/{name}/{method.name}", method) for name in names for method in pool.FindServiceByName(name).methods]


def test_no_method_reflection_lists_answers_internal_to_an_empty_request_from_any_role(
    registry: Registry, admin: AdminClient, member: Callable[[str], Credentials]
) -> None:
    callers = {
        "member": member("platform-a"),
        "admin": registry.admin_credentials(),
        "probe": Credentials.load(registry.data_dir / PROBE_CREDENTIALS).with_endpoint(registry.endpoint),
    }
    methods = reflected_methods(admin.channel)
    assert {path for path, _ in methods} == {path for path, _ in every_method()}
    faults = []
    for who, credentials in callers.items():
        with secure_channel(credentials) as channel:
            for path, method in methods:
                status = call(channel, path, method)
                if status in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    faults.append(f"{path} as {who}: {status.name}")
    assert not faults, "\n".join(faults)
