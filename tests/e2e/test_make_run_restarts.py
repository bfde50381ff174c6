"""`make run` keeps going when a part dies: the part is started again and every accepted message is stored once."""

import json
import os
import re
import signal
import subprocess
import threading
import urllib.request
import uuid

import pytest

from infra.process import wait_until
from tests.support.local_stack import LocalStackRun, running

BAD_CLIENT = "bad!client"  # refused by the consumer's settings: it exits 2 at once, every time


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A running `make run` with one consumer (clientB), on free ports and a data dir of its own."""
    # The store's restart must fit in the consumer's retries, or records sent meanwhile would be dead-lettered.
    run = LocalStackRun(tmp_path_factory.mktemp("make-run"), RUN_CLIENTS="clientB", STORE_RETRY_ATTEMPTS="10",
                        STORE_RETRY_MAX_WAIT_S="2")
    yield from running(run)


def send(api, tag: str, count: int) -> list[str]:
    """Send messages from clientB to itself, ids starting with `tag`, as a client does; return their ids.

    A send left without an answer (the part serving it died) may have been published or not, so it is
    sent again with the same message id until the producer answers 202; the store keeps one copy.
    """
    ids = [f"{tag}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for n, message_id in enumerate(ids):
        wait_until(lambda: _accepted(api, f"message {n} of {tag}", message_id), 90,
                   what=f"a 202 for {message_id}")
    return ids


def _accepted(api, text: str, message_id: str) -> bool:
    """Whether one send of `message_id` was answered 202 (False if it got no answer or a 503)."""
    try:
        reply = api.send("clientB", "clientB", text, messageId=message_id)
    except OSError:
        return False
    assert reply.status in (202, 503), reply.body
    return reply.status == 202


def stored(api, tag: str) -> list[str]:
    """The ids starting with `tag` of the messages stored for clientB, as GET /messages lists them."""
    reply = api.get("/messages", to="clientB", limit=500)
    assert reply.status == 200, reply.body
    return [message["messageId"] for message in reply.body if message["messageId"].startswith(tag)]


def ready(api) -> bool:
    """Whether the producer answers /ready with 200."""
    try:
        return api.get("/ready").status == 200
    except OSError:
        return False


def restart_lines(stack, part: str) -> list[str]:
    """The lines saying a part is being restarted."""
    return [line for line in stack.lines() if line.startswith(f"{part} exited")]


def kill_and_check(stack, part: str) -> None:
    """SIGKILL a part amid sends; check it is restarted once and every message is stored exactly once."""
    tag = f"kill-{uuid.uuid4().hex[:10]}"
    accepted = send(stack.api, tag, 5)
    old = stack.pids()[part]
    os.kill(old, signal.SIGKILL)
    accepted += send(stack.api, tag, 5)
    expected = f"{part} exited (killed by SIGKILL); restarting it in 1s"
    stack.wait_for(lambda: expected in restart_lines(stack, part), 30, f"the line saying {part} is restarted")
    stack.wait_for(lambda: stack.pids()[part] != old, 90, f"{part} to run again")
    stack.wait_for(lambda: ready(stack.api), 60, "the producer to be ready again")
    accepted += send(stack.api, tag, 5)
    wait_until(lambda: set(stored(stack.api, tag)) >= set(accepted), 60, what="every accepted message stored")
    assert sorted(stored(stack.api, tag)) == sorted(accepted)
    assert restart_lines(stack, part) == [expected]
    assert stack.process.poll() is None


def test_a_part_that_keeps_crashing_stops_make_run_with_one_line_naming_it_and_nothing_is_left(tmp_path):
    run = LocalStackRun(tmp_path, RUN_CLIENTS=f"clientB {BAD_CLIENT}")
    run.start()
    try:
        assert run.process.wait(180) == 1, run.output()[-4000:]
        lines = run.lines()
        log = tmp_path / ".run" / "logs" / f"consumer-{BAD_CLIENT}.log"
        assert [line for line in lines if "keeps crashing" in line] == [
            f"consumer-{BAD_CLIENT} keeps crashing: it died 5 times in a row, each within 60s of starting "
            f"(last: exited (exit status 2)); stopping everything; log: {log}"]
        assert [line.rsplit(" ", 1)[1] for line in restart_lines(run, f"consumer-{BAD_CLIENT}")] == [
            "1s", "2s", "4s", "8s"]
        assert lines[-1] == "all processes stopped" and log.exists()
        wait_until(lambda: not run.marked_processes(), 5, what="every process make run started to be gone")
    finally:
        run.close()


def test_the_printed_curl_commands_work_as_written(stack):
    output = stack.output()
    block = output[output.index("try:"):output.index("observe:")].replace("\\\n", " ")  # join continued lines
    stream_command, *commands = [line.strip() for line in block.splitlines() if line.strip().startswith("curl ")]
    stream = subprocess.Popen(["bash", "-c", f"exec {stream_command}"], stdout=subprocess.PIPE, text=True)
    try:
        assert stream.stdout.readline().startswith("retry:"), "the stream answers at once"
        answers = [json.loads(subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30).stdout)
                   for command in commands]
        sent, listed, failed, dry_run, ready_answer = answers
        assert sent["status"] == "accepted"
        streamed = _lines_until(stream, sent["messageId"], timeout=30)
        assert "event: chat-message" in streamed, "the printed stream command shows the sent message live"
    finally:
        stream.kill()
        stream.wait()
    wait_until(lambda: sent["messageId"] in [m["messageId"] for m in json.loads(
        subprocess.run(["bash", "-c", commands[1]], capture_output=True, text=True, timeout=30).stdout)],
        timeout=30, what="the sent message in the printed listing")
    assert isinstance(listed, list) and isinstance(failed, list) and ready_answer["status"] == "ready"
    assert dry_run["dryRun"] is True and dry_run["done"] == []


def test_the_printed_metrics_and_log_commands_show_counters_and_one_message_across_services(stack):
    output = stack.output()
    block = output[output.index("observe:"):output.index("Ctrl-C")].replace("\\\n", " ")
    producer_metrics, consumer_metrics, send, follow = [line.strip() for line in block.splitlines()
                                                        if line.strip().startswith(("curl ", "grep "))]
    run = lambda command: subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30).stdout
    sent = json.loads(run(send))
    assert sent["status"] == "accepted"
    assert "kafka_publish_total" in run(producer_metrics) and 'outcome="acked"' in run(producer_metrics)
    wait_until(lambda: 'outcome="stored"' in run(consumer_metrics), timeout=30, what="the consumer's stored count")
    lines = lambda: [json.loads(line) for line in run(follow).splitlines()]
    wait_until(lambda: {line["message"] for line in lines()} >= {"message accepted", "messages stored"}, timeout=30,
               what="the producer's and the consumer's lines about the message")
    named = [[line["messageId"]] if "messageId" in line else line["messageIds"] for line in lines()
             if {"messageId", "messageIds"} & set(line)]
    assert {message_id for ids in named for message_id in ids} == {sent["messageId"]}


def test_the_printed_chat_and_console_open_with_the_printed_sign_ins(stack):
    output = stack.output()
    chat_url = re.search(r"^chat: +(\S+) ", output, re.MULTILINE).group(1)
    console_url, operator, token = re.search(r"^console: (\S+) +sign in as (\S+) / (\S+)$", output, re.MULTILINE).groups()
    client, client_token = re.search(r"^ +(client\S*) / (\S+)$", output, re.MULTILINE).groups()
    for url, name, secret in ((chat_url, client, client_token), (console_url, operator, token)):
        page = urllib.request.urlopen(url, timeout=10)
        assert page.status == 200 and page.headers.get_content_type() == "text/html"
        assert 'id="sign-in-form"' in page.read().decode()
        sign_in = urllib.request.Request(url + "session", data=json.dumps({"name": name, "token": secret}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(sign_in, timeout=10) as answer:
            assert answer.status == 201 and "HttpOnly" in answer.headers["Set-Cookie"]


def test_the_data_logs_and_tokens_are_for_their_owner_alone(stack):
    data, run = stack.workdir / "data", stack.workdir / ".run"
    assert (data / "ferretdb" / "sqlite").is_dir() and (data / "tokens.json").exists() and (run / "tokens.env").exists()
    assert stack.open_to_others() == []


def _lines_until(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    """Lines a process prints until one holds `text` (read on a thread, so the deadline holds)."""
    lines, found = [], threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"{text} not printed within {timeout}s: {lines[-5:]}"
    return lines


def test_a_killed_consumer_is_restarted_and_every_accepted_message_is_stored_once(stack):
    kill_and_check(stack, "consumer-clientB")


def test_a_killed_producer_is_restarted_and_every_accepted_message_is_stored_once(stack):
    kill_and_check(stack, "producer")


def test_a_killed_store_is_restarted_and_every_accepted_message_is_stored_once(stack):
    kill_and_check(stack, "FerretDB")


def test_sigterm_stops_make_run_and_every_process_it_started(stack):
    assert len(stack.marked_processes()) >= 6  # make run, Kafka, FerretDB, consumer, gunicorn and its workers
    assert stack.stop() == 0
    lines = stack.lines()
    assert "stopping (SIGTERM) ..." in lines and lines[-1] == "all processes stopped"
    wait_until(lambda: not stack.marked_processes(), 5, what="every process make run started to be gone")
