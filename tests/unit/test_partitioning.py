"""The partition of a key: Kafka's murmur2 test vectors, and properties over any key and partition count."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_domain.partitioning import murmur2, partition_of

# Kafka's UtilsTest.testMurmur2 (the Java client's own expectations).
JAVA_CASES = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]
# librdkafka's unittest_murmur2 (rdmurmur2.c), whose expectations it checked against the Java client.
LIBRDKAFKA_CASES = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424F1C),
    (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4A62B377),
    (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xE0E4E09E),
    (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62B8B43F),
    (b"", 0x106E08D9),
]


def int32(value: int) -> int:
    """Wrap to a Java int."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_murmur2(data: bytes) -> int:
    """Utils.murmur2 transliterated line by line, Java ints and the switch's fall-through included."""
    length, m, r = len(data), 0x5BD1E995, 24
    h = int32(0x9747B28C ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = int32(data[i4] + (data[i4 + 1] << 8) + (data[i4 + 2] << 16) + (data[i4 + 3] << 24))
        k = int32(k * m)
        k ^= (k & 0xFFFFFFFF) >> r
        k = int32(k * m)
        h = int32(h * m)
        h = int32(h ^ k)
    tail = length % 4
    if tail >= 3:
        h ^= data[(length & ~3) + 2] << 16
    if tail >= 2:
        h ^= data[(length & ~3) + 1] << 8
    if tail >= 1:
        h ^= data[length & ~3]
        h = int32(h * m)
    h = int32(h ^ ((h & 0xFFFFFFFF) >> 13))
    h = int32(h * m)
    return int32(h ^ ((h & 0xFFFFFFFF) >> 15))


@pytest.mark.parametrize("key, expected", JAVA_CASES)
def test_the_hash_matches_the_java_clients_test_vectors(key, expected):
    assert murmur2(key) == expected


@pytest.mark.parametrize("key, expected", LIBRDKAFKA_CASES)
def test_the_hash_matches_librdkafkas_test_vectors(key, expected):
    assert murmur2(key) & 0xFFFFFFFF == expected


def test_the_partition_is_the_positive_hash_modulo_the_count():
    # murmur2(b"kafka") is negative: toPositive drops the sign bit, it does not negate.
    assert partition_of(b"kafka", 10) == (0xD067CF64 & 0x7FFFFFFF) % 10 == 0
    assert partition_of(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7


def test_a_topic_without_partitions_is_refused():
    with pytest.raises(ValueError):
        partition_of(b"clientB", 0)


@given(st.binary(max_size=80))
def test_the_hash_is_the_java_algorithm_for_any_key(key):
    assert murmur2(key) == java_murmur2(key)


@given(st.binary(max_size=80), st.integers(min_value=1, max_value=10_000))
def test_every_key_gets_one_partition_in_range_the_same_every_time(key, partitions):
    partition = partition_of(key, partitions)
    assert 0 <= partition < partitions
    assert partition_of(bytes(key), partitions) == partition


@given(st.binary(max_size=80))
def test_a_topic_of_one_partition_puts_every_key_in_it(key):
    assert partition_of(key, 1) == 0
