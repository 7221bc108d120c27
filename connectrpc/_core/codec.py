"""Message codecs: binary protobuf ("proto") and protobuf's canonical JSON ("json").

The codec name appears in the content type: ``application/proto`` or ``application/json`` for
Connect unary, ``application/connect+proto`` for Connect streams and ``application/grpc+proto``
for gRPC.
"""

from __future__ import annotations

import abc
import json
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

__all__ = ["CODECS", "Codec", "CodecError", "JSONCodec", "ProtoCodec"]

M = TypeVar("M", bound=Message)


class CodecError(Exception):
    """The bytes are not a valid encoding of the expected message."""


class Codec(abc.ABC):
    """Turns messages into bytes and back."""

    name: str

    @abc.abstractmethod
    def encode(self, message: Message) -> bytes: ...

    @abc.abstractmethod
    def decode(self, data: bytes, message_type: type[M]) -> M: ...


class ProtoCodec(Codec):
    name = "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes, message_type: type[M]) -> M:
        message = message_type()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise CodecError(f"invalid binary {message_type.DESCRIPTOR.full_name}: {exc}") from exc
        return message


class JSONCodec(Codec):
    name = "json"

    def encode(self, message: Message) -> bytes:
        return json.dumps(
            json_format.MessageToDict(message), separators=(",", ":"), ensure_ascii=False
        ).encode()

    def decode(self, data: bytes, message_type: type[M]) -> M:
        message = message_type()
        try:
            json_format.Parse(data.decode(), message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise CodecError(f"invalid JSON {message_type.DESCRIPTOR.full_name}: {exc}") from exc
        return message


CODECS: dict[str, Codec] = {"proto": ProtoCodec(), "json": JSONCodec()}
