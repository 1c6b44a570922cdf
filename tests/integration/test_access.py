"""Mutual TLS and deny-by-default authorization: who may call what."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jpr_client import Credentials, RegistryClient, RPCError
from jpr_client.client import secure_channel
from registry.api.jpr.v1 import admin_pb2, admin_pb2_grpc, registry_pb2, registry_pb2_grpc
from registry.crypto import pki
from registry.datadir import DataDir
from registry.server.auth import allowed_roles
from tests.conftest import AdminClient, Registry

SERVICES = [registry_pb2.DESCRIPTOR.services_by_name["Registry"], admin_pb2.DESCRIPTOR.services_by_name["Admin"]]


def test_every_jpr_method_has_an_authorization_rule_and_unknown_ones_have_none() -> None:
    for service in SERVICES:
        for method in service.methods:
            assert allowed_roles(f"/{service.full_name}/{method.name}"), method.full_name
    assert allowed_roles("/jpr.v1.Secret/Dump") == frozenset()


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


def test_certificate_for_an_unregistered_member_is_permission_denied(registry: Registry) -> None:
    ca = DataDir(registry.data_dir).ca()
    key_pem, csr_pem = pki.make_csr("ghost", pki.ROLE_MEMBER)
    ghost = Credentials(
        registry="jpr-test", endpoint=registry.endpoint, role="member", name="ghost",
        ca_certificate=ca.cert_pem.decode(), certificate=pki.issue_client_cert(ca, csr_pem, "ghost", pki.ROLE_MEMBER).decode(),
        private_key=key_pem.decode(),
    )
    with RegistryClient(ghost) as client, pytest.raises(RPCError) as caught:
        client.get_report("00000000-0000-0000-0000-000000000000")
    assert caught.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert "not registered" in caught.value.message


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
