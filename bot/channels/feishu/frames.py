"""The long connection's frame, ``pbbp2.Frame`` (protobuf, proto2), encoded and decoded here.

The schema is the one the official SDK ships (``lark_oapi/ws/pb/pbbp2_pb2.py``)::

    message Header { required string key = 1; required string value = 2; }
    message Frame {
      required uint64 SeqID = 1;  required uint64 LogID = 2;
      required int32 service = 3; required int32 method = 4;   // 0 control, 1 data
      repeated Header headers = 5;
      optional string payload_encoding = 6; optional string payload_type = 7;
      optional bytes payload = 8; optional string LogIDNew = 9;
    }

We do not import the SDK at run time: importing any part of lark-oapi loads the whole SDK (seconds
of blocking the event loop, and its ws client module creates an event loop of its own). The tests
check this codec against the SDK's generated class in both directions, and the fake Feishu speaks
only the SDK's class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FRAME = 4 * 1024 * 1024  # Feishu splits events into parts well below this
MAX_HEADERS = 64


class FrameError(ValueError):
    """Bytes that are not a Frame."""


@dataclass
class Frame:
    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload_encoding: str = ""
    payload_type: str = ""
    payload: bytes = b""
    log_id_new: str = ""

    def header(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.headers if k == key), default)

    def encode(self) -> bytes:
        out = bytearray()
        _varint_field(out, 1, self.seq_id)
        _varint_field(out, 2, self.log_id)
        _varint_field(out, 3, self.service)
        _varint_field(out, 4, self.method)
        for key, value in self.headers:
            inner = bytearray()
            _bytes_field(inner, 1, key.encode())
            _bytes_field(inner, 2, value.encode())
            _bytes_field(out, 5, bytes(inner))
        for number, text in ((6, self.payload_encoding), (7, self.payload_type)):
            if text:
                _bytes_field(out, number, text.encode())
        if self.payload:
            _bytes_field(out, 8, self.payload)
        if self.log_id_new:
            _bytes_field(out, 9, self.log_id_new.encode())
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Frame:
        if len(data) > MAX_FRAME:
            raise FrameError("frame too large")
        frame = cls()
        seen: set[int] = set()
        for number, value in _fields(data):
            seen.add(number)
            if number in (1, 2, 3, 4):
                if not isinstance(value, int):
                    raise FrameError(f"field {number} is not a varint")
                if number == 1:
                    frame.seq_id = value
                elif number == 2:
                    frame.log_id = value
                elif number == 3:
                    frame.service = _int32(value)
                else:
                    frame.method = _int32(value)
            elif number == 5:
                if not isinstance(value, bytes) or len(frame.headers) >= MAX_HEADERS:
                    raise FrameError("bad header")
                frame.headers.append(_header(value))
            elif number in (6, 7, 9):
                text = _text(value)
                if number == 6:
                    frame.payload_encoding = text
                elif number == 7:
                    frame.payload_type = text
                else:
                    frame.log_id_new = text
            elif number == 8:
                if not isinstance(value, bytes):
                    raise FrameError("payload is not bytes")
                frame.payload = value
        if not {1, 2, 3, 4} <= seen:
            raise FrameError("a required field is missing")
        return frame


def _header(data: bytes) -> tuple[str, str]:
    key = value = None
    for number, item in _fields(data):
        if number == 1:
            key = _text(item)
        elif number == 2:
            value = _text(item)
    if key is None or value is None:
        raise FrameError("header without key or value")
    return key, value


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise FrameError("string field is not length-delimited")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise FrameError("string field is not UTF-8") from exc


def _int32(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _write_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1  # negative int32 values take ten bytes, as protobuf writes them
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _varint_field(out: bytearray, number: int, value: int) -> None:
    _write_varint(out, number << 3)
    _write_varint(out, value)


def _bytes_field(out: bytearray, number: int, value: bytes) -> None:
    _write_varint(out, (number << 3) | 2)
    _write_varint(out, len(value))
    out += value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise FrameError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs; fixed-width fields of unknown numbers are skipped."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FrameError("field number 0")
        if wire == 0:
            value, pos = _read_varint(data, pos)
            fields.append((number, value))
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise FrameError("truncated field")
            fields.append((number, data[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                raise FrameError("truncated field")
        else:
            raise FrameError(f"unsupported wire type {wire}")
    return fields
