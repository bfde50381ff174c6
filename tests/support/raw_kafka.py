"""Produce records whose header names are arbitrary bytes, which confluent-kafka's API cannot express.

confluent-kafka turns a header name into text before handing it to librdkafka, so a hostile
client's non-UTF-8 header name has to be produced through librdkafka itself (the copy bundled
with confluent-kafka), with ctypes.
"""

import ctypes
import glob
import os

import confluent_kafka

VTYPE_END, VTYPE_TOPIC, VTYPE_VALUE, VTYPE_KEY, VTYPE_HEADER = 0, 1, 4, 5, 9
PRODUCER = 0


class _Header(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]


class _Mem(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Value(ctypes.Union):
    _fields_ = [("cstr", ctypes.c_char_p), ("mem", _Mem), ("header", _Header), ("pad", ctypes.c_char * 64)]


class _VU(ctypes.Structure):
    _fields_ = [("vtype", ctypes.c_int), ("u", _Value)]


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka shared library that confluent-kafka ships with."""
    libs = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs")
    [path] = glob.glob(os.path.join(libs, "librdkafka*.so*"))
    lib = ctypes.CDLL(path)
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_produceva.restype = ctypes.c_void_p
    lib.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(_VU), ctypes.c_size_t]
    lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_outq_len.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


def produce_with_raw_header_names(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    """Produce (key, value, [(name bytes, value bytes)]) records with acks=all; raise unless all were delivered."""
    lib = _librdkafka()
    errors = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    for name, value in ((b"bootstrap.servers", bootstrap.encode()), (b"acks", b"all")):
        if lib.rd_kafka_conf_set(conf, name, value, errors, len(errors)) != 0:
            raise RuntimeError(errors.value.decode())
    handle = lib.rd_kafka_new(PRODUCER, conf, errors, len(errors))
    if not handle:
        raise RuntimeError(errors.value.decode())
    keep = []  # the buffers must outlive the produce call
    try:
        for key, value, headers in records:
            fields = [_VU(VTYPE_TOPIC, _Value(cstr=topic.encode()))]
            if value is not None:  # none: a tombstone
                fields.append(_field(VTYPE_VALUE, value, keep))
            if key is not None:
                fields.append(_field(VTYPE_KEY, key, keep))
            for name, header_value in headers:
                buffer = ctypes.create_string_buffer(header_value, len(header_value))
                keep.append(buffer)
                header = _Header(name, ctypes.cast(buffer, ctypes.c_void_p), len(header_value))
                fields.append(_VU(VTYPE_HEADER, _Value(header=header)))
            array = (_VU * len(fields))(*fields)
            if lib.rd_kafka_produceva(handle, array, len(fields)):
                raise RuntimeError("librdkafka refused the record")
        lib.rd_kafka_flush(handle, 15000)
        if lib.rd_kafka_outq_len(handle):
            raise RuntimeError("records were not delivered within 15 s")
    finally:
        lib.rd_kafka_destroy(handle)


def _field(vtype: int, data: bytes, keep: list) -> _VU:
    """A key or value field pointing at a copy of `data`."""
    buffer = ctypes.create_string_buffer(data, len(data))
    keep.append(buffer)
    return _VU(vtype, _Value(mem=_Mem(ctypes.cast(buffer, ctypes.c_void_p), len(data))))
