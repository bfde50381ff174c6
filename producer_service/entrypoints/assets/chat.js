// The chat: conversations, history with scrollback, a composer, and live messages from /stream.
"use strict";

const chat = {
  me: null,
  open: null,                // the client whose conversation is shown
  conversations: new Map(),  // client -> {with, latest, unread}
  shown: new Map(),          // messageId -> element, in the open conversation
  stored: new Set(),         // messageIds the stream said are stored
  arrivals: new Map(),       // client -> the latest messages the stream brought of that conversation
  nextPage: null,            // the Link to older messages of the open conversation
  loadingOlder: false,
  position: null,            // the last stream position: a reconnect resumes after it
  maxLength: Number(document.querySelector(".chat")?.dataset.maxLength || 0),
};

const $ = (id) => document.getElementById(id);

function partnerOf(message) {
  return message.from === chat.me ? message.to : message.from;
}

function setConnection(state) {
  const node = $("connection");
  node.textContent = state === "live" ? "live" : "reconnecting…";
  node.className = `connection ${state}`;
}

// --- live stream ---------------------------------------------------------------------------

let source = null;
let started = false;
let refusals = 0;            // refused streams in a row: a resume refused twice starts afresh

function connect() {
  const url = chat.position ? `/stream?after=${encodeURIComponent(chat.position)}` : "/stream";
  source = new EventSource(url);
  source.addEventListener("open", () => { refusals = 0; setConnection("live"); });
  source.addEventListener("position", (event) => {
    chat.position = event.lastEventId;
    if (!started) { started = true; loadConversations(); }
  });
  source.addEventListener("chat-message", (event) => {
    chat.position = event.lastEventId;
    arrived(JSON.parse(event.data));
  });
  source.addEventListener("overflow", (event) => {
    chat.position = event.lastEventId;
    source.close();
    connect();
  });
  source.addEventListener("error", () => {
    setConnection("reconnecting");
    // The browser retries by itself (sending Last-Event-ID) unless the server refused the stream:
    // then a page whose session ended goes back to its sign-in; any other refusal is tried again,
    // and a resume refused twice (too much missed, say) gives way to a fresh stream and a reload.
    if (source.readyState !== EventSource.CLOSED) return;
    refusals += 1;
    api.call("GET", "/session")
      .then(() => setTimeout(refusals >= 2 && chat.position ? afresh : connect, 2000))
      .catch((failure) => (failure.status === 401 ? window.location.reload() : setTimeout(connect, 2000)));
  });
}

function afresh() {
  chat.position = null;
  started = false;          // the new stream's position loads the conversations again
  connect();
  if (chat.open) openConversation(chat.open);
}

// A conversation opened shows what the stream brought of it too: its pages come from views that trail
// the stream by the projector's delay.
const ARRIVALS_KEPT = 100;

function arrived(message) {
  chat.stored.add(message.messageId);
  const partner = partnerOf(message);
  const kept = chat.arrivals.get(partner) || [];
  chat.arrivals.set(partner, [...kept, message].slice(-ARRIVALS_KEPT));
  const entry = chat.conversations.get(partner) || {with: partner, latest: message.sentAt, unread: 0};
  if (message.sentAt >= entry.latest) entry.latest = message.sentAt;
  if (partner === chat.open) {
    show(message, "stored");
    if (message.from !== chat.me) markRead(partner, message.sentAt);
  } else if (message.from !== chat.me) {
    entry.unread += 1;
  }
  chat.conversations.set(partner, entry);
  renderConversations();
}

// --- conversations -------------------------------------------------------------------------

async function loadConversations() {
  try {
    const {data} = await api.call("GET", "/conversations");
    for (const entry of data) chat.conversations.set(entry.with, entry);
    renderConversations();
  } catch (failure) {
    $("composer-error").textContent = failure.message || "conversations could not be loaded";
  }
}

function renderConversations() {
  const list = $("conversation-list");
  const entries = [...chat.conversations.values()].sort((a, b) => (a.latest < b.latest ? 1 : a.latest > b.latest ? -1 : 0));
  list.replaceChildren(...entries.map((entry) => {
    const badge = entry.unread ? element("span", {class: "unread", text: String(entry.unread),
                                                   "aria-label": `${entry.unread} unread`}) : null;
    return element("li", {tabindex: "0", role: "button", "data-client": entry.with,
                          "aria-current": entry.with === chat.open ? "true" : "false",
                          onclick: () => openConversation(entry.with),
                          onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); openConversation(entry.with); } }},
                   element("span", {text: entry.with}), badge);
  }));
}

async function openConversation(partner) {
  chat.open = partner;
  chat.shown.clear();
  chat.nextPage = null;
  $("conversation-heading").textContent = `with ${partner}`;
  $("messages").replaceChildren();
  $("composer").hidden = false;
  $("composer-error").textContent = "";
  const entry = chat.conversations.get(partner);
  if (entry) entry.unread = 0;
  renderConversations();
  await loadPage(`/messages?with=${encodeURIComponent(partner)}&order=desc&limit=50`);
  if (partner !== chat.open) return;
  const brought = chat.arrivals.get(partner) || [];
  for (const message of brought) show(message, "stored", true);
  const theirs = brought.filter((message) => message.from !== chat.me).map((message) => message.sentAt).sort();
  if (theirs.length) markRead(partner, theirs[theirs.length - 1]);
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
  $("composer-text").focus();
}

async function loadPage(url) {
  const partner = chat.open;
  chat.loadingOlder = true;
  try {
    const {data, headers} = await api.call("GET", url);
    if (partner !== chat.open) return;
    const next = /<([^>]+)>;\s*rel="next"/.exec(headers.get("Link") || "");
    chat.nextPage = next ? next[1] : null;
    const list = $("messages");
    const before = list.scrollHeight - list.scrollTop;
    for (const message of data) show(message, "stored", true);
    list.scrollTop = list.scrollHeight - before;
    const newest = data.find((message) => message.from !== chat.me);
    if (newest) markRead(partner, newest.sentAt);
  } catch (failure) {
    $("composer-error").textContent = failure.message || "messages could not be loaded";
  } finally {
    chat.loadingOlder = false;
  }
}

function markRead(partner, upTo) {
  api.call("POST", `/conversations/${encodeURIComponent(partner)}/read`, {upTo}).catch(() => {});
}

// --- messages ------------------------------------------------------------------------------

function show(message, state, older = false) {
  const existing = chat.shown.get(message.messageId);
  if (existing) {
    if (state === "stored") setState(existing, "stored");
    return existing;
  }
  const mine = message.from === chat.me;
  const node = element("li", {class: mine ? "message mine" : "message", "data-message-id": message.messageId,
                              "data-sent-at": message.sentAt},
                       element("div", {class: "text", text: message.message}),
                       element("div", {class: "meta"},
                               element("time", {datetime: message.sentAt, text: new Date(message.sentAt).toLocaleString()}),
                               mine ? element("span", {class: "state"}) : null));
  if (mine) setState(node, state);
  chat.shown.set(message.messageId, node);
  place(node, older);
  return node;
}

// Messages stay in sentAt order whichever way they arrive: history pages, live events, or our own sends.
function place(node, older) {
  const list = $("messages");
  const sentAt = node.dataset.sentAt;
  const items = [...list.children].filter((child) => child.dataset.sentAt);
  const after = older ? items.find((child) => child.dataset.sentAt > sentAt) : null;
  if (after) { list.insertBefore(node, after); return; }
  const later = items.reverse().find((child) => child.dataset.sentAt <= sentAt);
  if (later) later.after(node); else list.prepend(node);
  if (!older) list.scrollTop = list.scrollHeight;
}

function setState(node, state) {
  if (node.dataset.state === "stored") return;
  node.dataset.state = state;
  const label = node.querySelector(".state");
  if (label) label.textContent = state === "sending" ? "sending…" : state;
}

async function send(text) {
  const partner = chat.open;
  const errors = $("composer-error");
  errors.textContent = "";
  const pending = element("li", {class: "message mine", "data-state": "sending"},
                          element("div", {class: "text", text}),
                          element("div", {class: "meta"}, element("span", {class: "state", text: "sending…"})));
  $("messages").append(pending);
  $("messages").scrollTop = $("messages").scrollHeight;
  try {
    const {data} = await api.call("POST", "/send-message", {to: partner, message: text});
    pending.remove();
    $("composer-text").value = "";
    updateCount();
    if (partner !== chat.open) return;
    const node = show({messageId: data.messageId, from: chat.me, to: partner, message: text, sentAt: data.sentAt},
                      chat.stored.has(data.messageId) ? "stored" : "accepted");
    node.focus?.();
  } catch (failure) {
    pending.remove();
    const details = failure.details || {};
    const fields = Object.entries(details).map(([field, problems]) =>
      `${field === "to" ? "recipient" : field === "message" ? "message" : field}: ${[].concat(problems).join(", ")}`);
    errors.textContent = fields.length ? fields.join("; ") : (failure.message || "the message was not sent");
  }
}

function updateCount() {
  const length = [...$("composer-text").value].length;
  $("composer-count").textContent = `${length} / ${chat.maxLength}`;
}

// --- wiring --------------------------------------------------------------------------------

api.wireSession((me) => {
  chat.me = me;
  connect();
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("composer-text").value);
  });
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send($("composer-text").value);
    }
  });
  $("composer-text").addEventListener("input", updateCount);
  $("new-conversation").addEventListener("submit", (event) => {
    event.preventDefault();
    const partner = $("new-partner").value.trim();
    if (partner) { openConversation(partner); $("new-partner").value = ""; }
  });
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 40 && chat.nextPage && !chat.loadingOlder) loadPage(chat.nextPage);
  });
});
