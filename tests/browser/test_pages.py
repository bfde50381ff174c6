"""The chat page and the dead-letter console in a real browser, against the real stack."""

import uuid

import pytest
from playwright.sync_api import expect

from infra.process import wait_until
from shared_domain.clock import utc_now
from shared_domain.envelope import encode
from shared_domain.message import Message
from tests.e2e.outage import QUICK_STORE_RETRIES, restore, send_during_outage, wait_projected

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def store(killable_store):
    """The store this module takes away for the replay scenario."""
    return killable_store


@pytest.fixture(scope="module")
def stack(stack_factory, store):
    """Consumers for clientA and clientB, the producer and the operator server, with quick store retries."""
    return stack_factory(clients=("clientA", "clientB"), mongo_uri=store.uri, **QUICK_STORE_RETRIES)


def sign_in(browser, base_url: str, name: str, token: str, viewport=None):
    """A fresh browser context signed in on a page; return the page."""
    context = browser.new_context(viewport=viewport or {"width": 1100, "height": 720})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(base_url + "/")
    page.get_by_label("Token").fill(token)
    page.locator("#sign-in-name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    return page


def open_chat(browser, stack, name: str, partner: str, viewport=None):
    """A signed-in chat page, live, with the conversation with `partner` open."""
    page = sign_in(browser, stack.api.base_url, name, stack.api.tokens[name], viewport)
    expect(page.locator("#connection")).to_have_text("live")
    page.get_by_label("New conversation with").fill(partner)
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#conversation-heading")).to_have_text(f"with {partner}")
    return page


def send(page, text: str) -> None:
    """Type a message and press Enter."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def bubbles(page, text: str):
    """The message bubbles holding exactly this text."""
    return page.locator("#messages .message .text", has_text=text)


def test_two_clients_chat_live_and_see_their_messages_stored(browser, stack, screenshot):
    alice = open_chat(browser, stack, "clientA", "clientB")
    bob = open_chat(browser, stack, "clientB", "clientA")
    marker = uuid.uuid4().hex[:6]
    send(alice, f"hello bob {marker}")
    expect(bubbles(bob, f"hello bob {marker}")).to_have_count(1)
    expect(alice.locator(f'#messages .message.mine[data-state="stored"]', has_text=marker)).to_have_count(1)
    expect(alice.get_by_label("Message", exact=True)).to_have_value("")
    send(bob, f"hi alice {marker}\nsecond line")
    expect(bubbles(alice, f"hi alice {marker}")).to_have_count(1)
    assert "second line" in bubbles(alice, f"hi alice {marker}").inner_text()
    # Shift+Enter is a new line, not a send.
    box = alice.get_by_label("Message", exact=True)
    box.fill("draft")
    box.press("Shift+Enter")
    assert box.input_value() == "draft\n"
    expect(alice.locator("#composer-count")).to_have_text(f"6 / {stack_limit(alice)}")
    box.fill("")
    screenshot(alice, "chat")
    # A third client never sees it, live or in its list.
    carol = sign_in(browser, stack.api.base_url, "clientC", stack.api.tokens["clientC"])
    expect(carol.locator("#connection")).to_have_text("live")
    expect(carol.locator("#conversation-list li")).to_have_count(0)
    for page in (alice, bob, carol):
        page.context.close()


def stack_limit(page) -> str:
    """The message length limit the page shows."""
    return page.locator(".chat").get_attribute("data-max-length")


def test_the_unread_count_shows_until_the_conversation_is_opened(browser, stack):
    bob = sign_in(browser, stack.api.base_url, "clientB", stack.api.tokens["clientB"])
    expect(bob.locator("#connection")).to_have_text("live")
    reply = stack.api.send("clientD", "clientB", "are you there?")
    assert reply.status == 202
    entry = bob.locator('#conversation-list li[data-client="clientD"]')
    expect(entry.locator(".unread")).to_have_text("1")
    entry.focus()
    entry.press("Enter")
    expect(bubbles(bob, "are you there?")).to_have_count(1)
    expect(entry.locator(".unread")).to_have_count(0)
    bob.reload()
    expect(bob.locator('#conversation-list li[data-client="clientD"] .unread')).to_have_count(0)
    bob.context.close()


def test_field_errors_from_the_api_show_inline_next_to_the_composer(browser, stack):
    page = open_chat(browser, stack, "clientA", "nobody-registered")
    send(page, "anyone?")
    expect(page.locator("#composer-error")).to_contain_text("recipient: is not a registered client")
    expect(page.locator("#messages .message")).to_have_count(0)
    page.get_by_label("New conversation with").fill("clientB")
    page.get_by_role("button", name="Open").click()
    send(page, "   ")
    expect(page.locator("#composer-error")).to_contain_text("message:")
    page.context.close()


def test_a_server_restart_shows_reconnecting_then_loses_and_repeats_nothing(browser, stack):
    bob = open_chat(browser, stack, "clientB", "clientA")
    before = [stack.api.send("clientA", "clientB", f"before restart {n}").status for n in range(3)]
    assert before == [202] * 3
    expect(bubbles(bob, "before restart")).to_have_count(3)
    producer = stack.producer
    producer.stop()
    expect(bob.locator("#connection")).to_have_text("reconnecting…")
    # While the page cannot reach the service, messages are stored by the consumer all the same.
    marker = uuid.uuid4().hex[:6]
    for n in range(3):
        stack.produce_raw(b"clientB", envelope(f"while away {marker} {n}"))
    producer.start()
    wait_until(lambda: stack.api.get("/ready").status == 200, timeout=60, what="the producer back", process=producer)
    expect(bob.locator("#connection")).to_have_text("live", timeout=30_000)
    expect(bubbles(bob, f"while away {marker}")).to_have_count(3, timeout=30_000)
    expect(bubbles(bob, "before restart")).to_have_count(3)
    after = stack.api.send("clientA", "clientB", f"after restart {marker}")
    assert after.status == 202
    expect(bubbles(bob, f"after restart {marker}")).to_have_count(1)
    texts = bob.locator("#messages .message .text").all_inner_texts()
    assert len(texts) == len(set(texts)), texts
    bob.context.close()


def envelope(text: str) -> bytes:
    """A valid message record from clientA to clientB, as the producer would have written it."""
    return encode(Message(str(uuid.uuid4()), "clientA", "clientB", text, utc_now()))


def test_a_client_cannot_open_the_console(browser, stack):
    page = sign_in(browser, stack.operator.base_url, "clientA", stack.api.tokens["clientA"])
    expect(page.locator("#sign-in-error")).to_contain_text("no live operator clientA")
    expect(page.locator("#rows")).to_have_count(0)
    chat = sign_in(browser, stack.api.base_url, "clientA", stack.api.tokens["clientA"])
    expect(chat.locator("#connection")).to_have_text("live")
    chat.goto(stack.operator.base_url + "/")
    expect(chat.locator("#sign-in-form")).to_be_visible()
    assert chat.request.get(stack.operator.base_url + "/failed-messages").status == 401
    page.context.close()
    chat.context.close()


def test_the_operator_replays_after_a_store_outage_and_the_message_appears_in_the_open_chat(browser, stack, store,
                                                                                            screenshot):
    bob = open_chat(browser, stack, "clientB", "clientE")
    replies = send_during_outage(stack, store, 2, sender="clientE", recipient="clientB")
    restore(stack, store)
    ids = {reply.body["messageId"] for reply in replies}
    wait_projected(stack, ids, **{"from": "clientE"})
    expect(bob.locator("#messages .message")).to_have_count(0)

    console = sign_in(browser, stack.operator.base_url, "ops", stack.operator.tokens["ops"],
                      viewport={"width": 1280, "height": 800})
    console.get_by_label("From").fill("clientE")
    console.get_by_role("button", name="Apply").click()
    expect(console.locator("#rows tr")).to_have_count(2)
    expect(console.locator("#counts")).to_contain_text("StoreUnavailable: 2")
    console.locator("#rows tr").first.click()
    expect(console.locator("#detail-facts")).to_contain_text("clientE")
    expect(console.locator("#detail-payload")).to_contain_text('"from":"clientE"')
    console.get_by_label("hex").check()
    expect(console.locator("#detail-payload")).to_contain_text("7b")
    console.get_by_role("button", name="Replay all matching").click()
    expect(console.locator("#plan-summary")).to_contain_text("2 would be replayed; 0 refused by the loop guard")
    assert stack.operator.get("/failed-messages", **{"from": "clientE"}).body[0]["status"] == "failed"  # a dry run
    screenshot(console, "console")
    console.get_by_label("Rate").fill("1")
    console.get_by_role("button", name="Replay 2").click()
    expect(console.locator("#plan-result")).to_contain_text("finished: 2 replayed", timeout=30_000)
    expect(bob.locator("#messages .message")).to_have_count(2, timeout=30_000)
    history = stack.operator.get("/failed-messages", status="replayed", **{"from": "clientE"}).body
    assert {item["history"][-1]["by"] for item in history} == {"ops"}
    console.context.close()
    bob.context.close()
