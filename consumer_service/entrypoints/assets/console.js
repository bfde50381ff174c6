// The dead-letter console: list with filters, counts, details, and dry-run-first replay and discard.
"use strict";

const $ = (id) => document.getElementById(id);
const consoleState = {filter: {}, rows: [], selected: new Set(), plan: null};

function filterFromForm() {
  const form = $("filters");
  const filter = {};
  for (const name of ["errorType", "client", "from", "to", "status", "reasonContains"]) {
    const value = form.elements[name].value.trim();
    if (value) filter[name] = value;
  }
  for (const name of ["since", "until"]) {
    const value = form.elements[name].value;
    if (value) filter[name] = new Date(value).toISOString();
  }
  return filter;
}

async function refresh() {
  $("filter-error").textContent = "";
  consoleState.filter = filterFromForm();
  const query = new URLSearchParams(consoleState.filter).toString();
  try {
    const [rows, counts] = await Promise.all([api.call("GET", `/failed-messages?${query}&limit=200`),
                                              api.call("GET", `/failed-message-counts?${query}`)]);
    consoleState.rows = rows.data;
    consoleState.selected.clear();
    renderRows();
    renderCounts(counts.data);
  } catch (failure) {
    const details = Object.entries(failure.details || {}).map(([field, problems]) => `${field}: ${[].concat(problems).join(", ")}`);
    $("filter-error").textContent = details.length ? details.join("; ") : failure.message;
  }
}

function renderCounts(counts) {
  const shown = consoleState.rows.length;
  $("total").textContent = `${counts.total}` + (shown < counts.total ? ` (showing the oldest ${shown})` : "");
  $("counts").replaceChildren(...Object.entries(counts.byErrorType).map(([type, count]) =>
    element("li", {}, element("button", {type: "button", class: "secondary", text: `${type}: ${count}`,
                                         onclick: () => { $("filters").elements.errorType.value = type; refresh(); }}))));
}

function renderRows() {
  $("rows").replaceChildren(...consoleState.rows.map((row) => {
    const box = element("input", {type: "checkbox", "aria-label": `select ${row.id}`,
                                  onclick: (event) => event.stopPropagation(),
                                  onchange: (event) => { event.target.checked ? consoleState.selected.add(row.id)
                                                                              : consoleState.selected.delete(row.id);
                                                         updateButtons(); }});
    return element("tr", {tabindex: "0", "data-id": row.id, onclick: () => showDetail(row.id),
                          onkeydown: (event) => { if (event.key === "Enter") showDetail(row.id); }},
                   element("td", {}, box),
                   element("td", {}, element("time", {datetime: row.failedAt, text: row.failedAt})),
                   element("td", {text: row.errorType}),
                   element("td", {class: "reason", text: row.reason}),
                   element("td", {text: row.from ?? "—"}),
                   element("td", {text: row.to ?? "—"}),
                   element("td", {class: "status", text: row.status}),
                   element("td", {text: String(row.replayCount)}));
  }));
  $("select-all").checked = false;
  updateButtons();
}

function updateButtons() {
  const none = consoleState.selected.size === 0;
  $("replay-selected").disabled = none;
  $("discard-selected").disabled = none;
}

// --- details -------------------------------------------------------------------------------

let detail = null;

async function showDetail(id) {
  try {
    const {data} = await api.call("GET", `/failed-messages/${encodeURIComponent(id)}`);
    detail = data;
  } catch (failure) {
    $("filter-error").textContent = failure.message;
    return;
  }
  const facts = [["id", detail.id], ["status", detail.status], ["error type", detail.errorType],
                 ["reason", detail.reason], ["attempts", detail.attempts], ["failed at", detail.failedAt],
                 ["consumer", detail.consumerClient], ["message id", detail.messageId ?? "—"],
                 ["from", detail.from ?? "—"], ["to", detail.to ?? "—"], ["key", detail.key ?? "—"],
                 ["source", `${detail.source.topic} [${detail.source.partition}] @ ${detail.source.offset}`],
                 ["payload encoding", detail.payloadEncoding]];
  $("detail-facts").replaceChildren(...facts.flatMap(([name, value]) =>
    [element("dt", {text: name}), element("dd", {text: String(value)})]));
  renderPayload();
  $("detail-headers").textContent = JSON.stringify(detail.headers, null, 2);
  $("detail-context").textContent = JSON.stringify(detail.deadLetter, null, 2);
  $("detail-history").replaceChildren(...detail.history.map((entry) =>
    element("li", {text: Object.entries(entry).map(([name, value]) => `${name}: ${value}`).join(", ")})));
  $("detail").hidden = false;
  $("detail").scrollIntoView({block: "nearest"});
}

function payloadBytes() {
  if (detail.payload === null || detail.payload === undefined) return new Uint8Array();
  if (detail.payloadEncoding === "base64") return Uint8Array.from(atob(detail.payload), (c) => c.charCodeAt(0));
  return new TextEncoder().encode(detail.payload);
}

function renderPayload() {
  const hex = document.querySelector('input[name="payload-view"]:checked').value === "hex";
  const bytes = payloadBytes();
  $("detail-payload").textContent = hex
    ? [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(" ")
    : new TextDecoder("utf-8", {fatal: false}).decode(bytes);
}

// --- actions: always a dry run first -------------------------------------------------------

async function plan(action, scope) {
  const selection = scope === "selected" ? {ids: [...consoleState.selected]}
                                         : {filter: consoleState.filter, limit: 1000};
  consoleState.plan = {action, selection};
  $("plan").hidden = false;
  $("plan-heading").textContent = `Dry run: ${action} ${scope === "selected" ? "the selected records" : "every matching record"}`;
  $("reason-field").hidden = action !== "discard";
  $("plan-error").textContent = "";
  $("plan-result").textContent = "";
  $("plan-progress").hidden = true;
  $("plan-run").disabled = true;
  await dryRun();
}

async function dryRun() {
  const {action, selection} = consoleState.plan;
  const body = {...selection, dryRun: true};
  if (action === "discard") body.reason = $("discard-reason").value.trim() || "dry run";
  try {
    const {data} = await api.call("POST", `/failed-messages/${action}`, body);
    consoleState.plan.ids = data.done;
    const refused = Object.entries(data.refused);
    const skipped = Object.entries(data.skipped);
    $("plan-summary").textContent = `${data.done.length} would be ${action === "replay" ? "replayed" : "discarded"}; ` +
      `${refused.length} refused by the loop guard; ${skipped.length} skipped; ${data.missing.length} missing.`;
    $("plan-refused").replaceChildren(...[...refused.map(([id, why]) => element("li", {text: `refused ${id}: ${why}`})),
                                          ...skipped.map(([id, why]) => element("li", {text: `skipped ${id}: ${why}`}))]);
    $("plan-run").disabled = data.done.length === 0;
    $("plan-run").textContent = `${action === "replay" ? "Replay" : "Discard"} ${data.done.length}`;
  } catch (failure) {
    $("plan-error").textContent = failure.message;
  }
}

async function run() {
  const {action, ids} = consoleState.plan;
  const reason = $("discard-reason").value.trim();
  if (action === "discard" && !reason) {
    $("plan-error").textContent = "say why these records must never be replayed";
    return;
  }
  const rate = Math.max(1, Math.min(1000, Number($("rate").value) || 1));
  const progress = $("plan-progress");
  progress.hidden = false;
  progress.max = ids.length;
  progress.value = 0;
  $("plan-run").disabled = true;
  const totals = {done: 0, refused: 0, skipped: 0, missing: 0};
  for (let start = 0; start < ids.length; start += rate) {
    const began = performance.now();
    const body = {ids: ids.slice(start, start + rate)};
    if (action === "discard") body.reason = reason;
    try {
      const {data} = await api.call("POST", `/failed-messages/${action}`, body);
      totals.done += data.done.length;
      totals.refused += Object.keys(data.refused).length;
      totals.skipped += Object.keys(data.skipped).length;
      totals.missing += data.missing.length;
    } catch (failure) {
      $("plan-error").textContent = `${failure.message} (stopped after ${start} of ${ids.length}; what was done is recorded)`;
      break;
    }
    progress.value = Math.min(ids.length, start + rate);
    $("plan-result").textContent = `${progress.value} / ${ids.length}: ${totals.done} ${action === "replay" ? "replayed" : "discarded"}`;
    const wait = 1000 - (performance.now() - began);
    if (start + rate < ids.length && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  $("plan-result").textContent = `finished: ${totals.done} ${action === "replay" ? "replayed" : "discarded"}, ` +
    `${totals.refused} refused, ${totals.skipped} skipped, ${totals.missing} missing`;
  refresh();
}

api.wireSession(() => {
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  $("select-all").addEventListener("change", (event) => {
    for (const box of $("rows").querySelectorAll('input[type="checkbox"]')) {
      box.checked = event.target.checked;
      box.dispatchEvent(new Event("change"));
    }
  });
  $("replay-selected").addEventListener("click", () => plan("replay", "selected"));
  $("discard-selected").addEventListener("click", () => plan("discard", "selected"));
  $("replay-all").addEventListener("click", () => plan("replay", "all"));
  $("discard-all").addEventListener("click", () => plan("discard", "all"));
  $("plan-run").addEventListener("click", run);
  $("plan-cancel").addEventListener("click", () => { $("plan").hidden = true; consoleState.plan = null; });
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  for (const radio of document.querySelectorAll('input[name="payload-view"]')) radio.addEventListener("change", renderPayload);
  refresh();
});
