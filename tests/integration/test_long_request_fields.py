"""A 60,000-character field of any request gets its own status and a short message.

gRPC carries the message in the `grpc-message` trailer: a refusal that quoted
the whole field would exceed the metadata size limit and reach the caller as a
transport failure instead of the status the protocol documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from jpr_client import Credentials
from jpr_client.api.jpr.v1 import admin_pb2, registry_pb2
from jpr_client.client import secure_channel
from tests.conftest import AdminClient

LENGTH = 60_000
MAX_DETAILS = 500
# What a long field may be answered with; never a fault, nor a transport failure.
PRECISE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.UNAUTHENTICATED,
}
# Long text shaped like each kind of id, so that every parser, not only the first check, sees it.
FILLERS = {
    f"{name}-{digit_name}": prefix + digit * (LENGTH - len(prefix))
    for name, prefix in (("bare", ""), ("listing", "L"), ("subject", "S"), ("appeal", "A"))
    for digit_name, digit in (("ascii", "7"), ("superscript", "²"))
} | {"letters": "x" * LENGTH}
# The other fields hold ordinary values, so that the long one is not refused for their sake.
ORDINARY = {"reason": "a reason the test gives", "member": "platform-a", "token_prefix": "0" * 16}
TEXT_TYPES = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES)


def unary_methods() -> list[tuple[str, MethodDescriptor]]:
    return [
        (service.name, method)
        for module, name in ((registry_pb2, "Registry"), (admin_pb2, "Admin"))
        for service in [module.DESCRIPTOR.services_by_name[name]]
        for method in service.methods
        if not method.client_streaming and not method.server_streaming
    ]


LONG_REQUESTS = [
    (service, method, field.name)
    for service, method in unary_methods()
    for field in method.input_type.fields
    if field.type in TEXT_TYPES
]


def request(method: MethodDescriptor, long_field: str, filler: str) -> Message:
    message = message_factory.GetMessageClass(method.input_type)()
    for field in method.input_type.fields:
        if field.enum_type is not None:
            setattr(message, field.name, field.enum_type.values[-1].number)  # never UNSPECIFIED, nor PENDING
        if field.type not in TEXT_TYPES:
            continue
        text = filler if field.name == long_field else ORDINARY.get(field.name, "")
        value: str | bytes = text if field.type == FieldDescriptor.TYPE_STRING else text.encode()
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
    return message


def call(channel: grpc.Channel, service: str, method: MethodDescriptor, message: Message) -> tuple[grpc.StatusCode, str]:
    stub = channel.unary_unary(
        f"/jpr.v1.{service}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
    )
    try:
        stub(message, timeout=10)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture
def channels(admin: AdminClient, member: Callable[[str], Credentials]) -> Iterator[dict[str, grpc.Channel]]:
    opened = {"member": secure_channel(member("platform-a")), "admin": secure_channel(admin.credentials)}
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.mark.parametrize(("service", "method", "field"), LONG_REQUESTS, ids=[f"{s}.{m.name}.{f}" for s, m, f in LONG_REQUESTS])
def test_a_60000_character_field_gets_a_precise_status_and_a_short_message(
    channels: dict[str, grpc.Channel], service: str, method: MethodDescriptor, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    for role, channel in channels.items():
        for filler_name, filler in FILLERS.items():
            code, details = call(channel, service, method, request(method, field, filler))
            where = f"{role} calling {method.name} with {field} = {filler_name} filler"
            assert code in PRECISE, f"{where}: {code.name} {details[:200]}"
            assert len(details) < MAX_DETAILS, f"{where}: {len(details)} characters of details"
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
