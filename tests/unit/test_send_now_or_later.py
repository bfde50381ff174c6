"""A deferred answer is sent by the thread that learned its outcome when the socket takes it at once, else by a pool."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from shared_adapters.http_worker import send_now_or_later


class Outcome:
    """What `then` was told, and on which thread."""

    def __init__(self):
        self.done = threading.Event()
        self.complete, self.thread = None, None

    def __call__(self, complete: bool):
        self.complete, self.thread = complete, threading.current_thread()
        self.done.set()


def received(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the peer closed before all was sent"
        data += chunk
    return bytes(data)


def test_an_answer_the_socket_takes_at_once_is_sent_on_the_calling_thread():
    server, client = socket.socketpair()
    with server, client, ThreadPoolExecutor(1) as pool:
        then, answer = Outcome(), b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"
        send_now_or_later(server, answer, pool.submit, then)
        assert then.done.is_set() and then.complete and then.thread is threading.current_thread()
        assert received(client, len(answer)) == answer


def test_an_answer_to_a_client_that_does_not_read_is_left_to_the_pool_and_arrives_whole_once_it_reads():
    server, client = socket.socketpair()
    with server, client, ThreadPoolExecutor(1, thread_name_prefix="answers") as pool:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        server.setblocking(False)
        backlog = 0
        try:
            while True:  # fill what the client has not read
                backlog += server.send(b"x" * 4096)
        except BlockingIOError:
            pass
        server.setblocking(True)
        then, answer = Outcome(), bytes(range(256)) * 64
        send_now_or_later(server, answer, pool.submit, then)
        assert not then.done.wait(0.2), "the answer cannot be whole while the client reads nothing"
        assert received(client, backlog) == b"x" * backlog
        assert received(client, len(answer)) == answer
        assert then.done.wait(10) and then.complete and then.thread.name.startswith("answers")


def test_an_answer_to_a_client_gone_is_told_unsent():
    server, client = socket.socketpair()
    client.close()
    with server, ThreadPoolExecutor(1) as pool:
        then = Outcome()
        send_now_or_later(server, b"HTTP/1.1 202 Accepted\r\n\r\n", pool.submit, then)
        assert then.done.wait(10) and then.complete is False
