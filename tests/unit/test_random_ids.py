"""Random ids come from pages of os.urandom: each byte goes to one caller, across threads and forked children."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given
from hypothesis import strategies as st

from shared_domain import random_ids
from shared_domain.random_ids import PAGE_BYTES, random_bytes, random_hex


@given(st.lists(st.integers(min_value=1, max_value=2 * PAGE_BYTES), min_size=1, max_size=20))
def test_bytes_are_handed_out_in_the_sizes_asked_across_pages(sizes):
    taken = [random_bytes(size) for size in sizes]
    assert [len(each) for each in taken] == sizes
    assert len(random_hex(16)) == 32 and int(random_hex(16), 16) >= 0


def test_a_page_is_drawn_from_os_urandom_and_given_out_once(monkeypatch):
    pages = iter([bytes(range(256)) * 16, bytes(reversed(range(256))) * 16])
    monkeypatch.setattr(random_ids.os, "urandom", lambda count: next(pages)[:count])
    fresh = random_ids._RandomPages()
    first = [fresh.take(16) for _ in range(PAGE_BYTES // 16)]
    assert b"".join(first) == bytes(range(256)) * 16  # the whole page, in order, nothing twice
    assert fresh.take(16) == bytes(reversed(range(256)))[:16]  # then the next page


def test_threads_taking_ids_at_once_never_get_the_same_bytes():
    def take_many(_):
        return [random_bytes(16) for _ in range(2000)]

    with ThreadPoolExecutor(8) as pool:
        taken = [each for batch in pool.map(take_many, range(8)) for each in batch]
    assert len(set(taken)) == len(taken) == 16000


def test_a_forked_child_draws_its_own_bytes_not_the_rest_of_its_parents_page():
    random_bytes(PAGE_BYTES)  # whatever page was there is used up ...
    random_bytes(16)  # ... and the parent holds a new one with most of it left
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next bytes, to the parent
        try:
            os.write(writing, random_bytes(64))
        finally:
            os._exit(0)
    os.close(writing)
    try:
        from_child = b""
        while len(from_child) < 64 and (chunk := os.read(reading, 64)):
            from_child += chunk
        os.waitpid(child, 0)
    finally:
        os.close(reading)
    assert len(from_child) == 64
    assert random_bytes(64) != from_child, "the child handed out what its parent hands out next"
