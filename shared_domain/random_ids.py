"""Random identifiers from the operating system's generator, drawn a page of bytes at a time.

os.urandom releases the interpreter lock for its system call, and a thread that lets it go waits to take it back
behind every other busy thread: one call per id made a batch of a hundred messages wait a hundred times. The page
is the same random bytes, taken a few at a time under a lock; a forked child never uses its parent's page.
"""

import os
import threading

PAGE_BYTES = 4096


class _RandomPages:
    """Bytes of os.urandom, handed out in order, each byte once, across threads and forks."""

    def __init__(self):
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def take(self, count: int) -> bytes:
        """`count` bytes nobody else was given."""
        with self._lock:
            if self._at + count > len(self._page):
                self._page, self._at = os.urandom(max(PAGE_BYTES, count)), 0
            taken = self._page[self._at:self._at + count]
            self._at += count
        return taken

    def _forget(self) -> None:
        # A new lock too: another thread of the parent may have held the old one when it forked.
        self._lock, self._page, self._at = threading.Lock(), b"", 0


_PAGES = _RandomPages()


def random_bytes(count: int) -> bytes:
    """`count` random bytes, as os.urandom gives them."""
    return _PAGES.take(count)


def random_hex(count: int) -> str:
    """`count` random bytes in hexadecimal (an id such as uuid4().hex, without its fixed version bits)."""
    return _PAGES.take(count).hex()
