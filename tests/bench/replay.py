"""The replay figure: how long `consumer-service dlq replay` takes to put a store outage's dead letters back."""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from infra.process import wait_until
from tests.support.services import BIN
from tests.support.stack import dead_letters_of


def run(api, database, mongo, env: dict, count: int, concurrency: int = 16) -> None:
    """Dead-letter `count` messages by stopping the store, bring it back, and time their replay."""
    mongo.stop()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(lambda n: api.send("outage", "client1", f"during the outage {n}"), range(count)))
    if any(reply.status != 202 for reply in replies):
        raise RuntimeError("a send during the store outage was not accepted")
    dead_letters_of(env["KAFKA_BOOTSTRAP_SERVERS"], env["DEAD_LETTER_TOPIC"],
                    {(reply.body["partition"], reply.body["offset"]) for reply in replies}, timeout=300)
    mongo.start()
    wait_until(lambda: database.failed_messages.count_documents({"from": "outage"}) >= count,
               timeout=300, interval=0.2, what=f"{count} failures projected")
    collection = database.failed_messages.count_documents({})
    began = time.perf_counter()
    subprocess.run([str(BIN / "consumer-service"), "dlq", "replay", "--from", "outage", "--by", "bench"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    replayed_in = time.perf_counter() - began
    wait_until(lambda: database.messages.count_documents({"from": "outage"}) >= count,
               timeout=300, interval=0.1, what=f"{count} replayed messages stored")
    print(f"replay after outage:  {count} records in {replayed_in:.2f} s ({count / replayed_in:.0f} records/s, "
          f"failed_messages holding {collection}), all stored after {time.perf_counter() - began:.2f} s")
