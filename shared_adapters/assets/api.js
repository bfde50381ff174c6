// The JSON API as both pages call it: the session's CSRF token on writes, errors as {status, error, message, details}.
"use strict";

const api = {
  csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  },

  async call(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (method !== "GET") headers["X-CSRF-Token"] = api.csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {method, headers, credentials: "same-origin",
                                    body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (error) {
      throw {status: 0, error: "network", message: "the service cannot be reached", details: {}};
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok && response.status !== 207) throw {status: response.status, ...(data || {})};
    return {status: response.status, data, headers: response.headers};
  },

  // Pages call this once: the sign-in form, or the sign-out button.
  wireSession(onSignedIn) {
    const form = document.getElementById("sign-in-form");
    if (form) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const error = document.getElementById("sign-in-error");
        error.textContent = "";
        try {
          await api.call("POST", "/session", {name: form.name.value.trim(), token: form.token.value.trim()});
          window.location.reload();
        } catch (failure) {
          error.textContent = failure.message || "sign-in failed";
        }
      });
      return;
    }
    document.getElementById("sign-out").addEventListener("click", async () => {
      try { await api.call("DELETE", "/session"); } finally { window.location.reload(); }
    });
    onSignedIn(document.getElementById("me").textContent);
  },
};

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}
