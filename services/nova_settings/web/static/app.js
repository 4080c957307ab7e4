// The settings page's progressive JavaScript: everything works without it, this only adds
// copy buttons, the model's context limit as the choice changes, streaming in Try it and a
// self-refreshing Status. No inline script (Content-Security-Policy: default-src 'self').
"use strict";

function onCopy(event) {
  const source = document.getElementById(event.currentTarget.dataset.copy);
  if (!source) return;
  const button = event.currentTarget;
  navigator.clipboard.writeText(source.textContent).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Select and copy by hand"; },
  );
}

function followLimit(select) {
  const shown = document.querySelector("[data-limit-value]");
  const update = () => {
    const limit = select.selectedOptions[0] && select.selectedOptions[0].dataset.limit;
    if (shown) shown.textContent = limit || "unknown";
  };
  select.addEventListener("change", update);
}

async function streamReply(form, event) {
  event.preventDefault();
  const message = form.querySelector("#message").value;
  const out = document.getElementById("reply");
  const model = document.getElementById("reply-model");
  const ttft = document.getElementById("reply-ttft");
  const rate = document.getElementById("reply-rate");
  const note = document.getElementById("reply-note");
  const error = document.getElementById("reply-error");
  const button = form.querySelector("button[type=submit]");
  out.textContent = ""; ttft.textContent = "-"; rate.textContent = "-"; model.textContent = "-";
  note.hidden = true; error.hidden = true; button.disabled = true;
  const started = performance.now();
  let first = null, last = null, chunks = 0, completionTokens = null;
  try {
    const response = await fetch("/try/stream", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": form.dataset.csrf,
                 "accept": "application/json" },
      body: JSON.stringify({ message }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || `HTTP ${response.status}`);
    }
    model.textContent = response.headers.get("x-nova-model") || "-";
    const fallback = response.headers.get("x-nova-fallback-reason");
    if (fallback) { note.textContent = fallback; note.hidden = false; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        let chunk;
        try { chunk = JSON.parse(data); } catch { continue; }
        if (chunk.usage && chunk.usage.completion_tokens) completionTokens = chunk.usage.completion_tokens;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        const text = delta && (delta.content || delta.reasoning_content);
        if (!text) continue;
        const now = performance.now();
        if (first === null) {
          first = now;
          ttft.textContent = `${Math.round(first - started)} ms`;
        }
        last = now; chunks += 1;
        out.textContent += text;
      }
    }
    if (first !== null && last > first) {
      const tokens = completionTokens || chunks;
      rate.textContent = `${(tokens / ((last - first) / 1000)).toFixed(1)}`;
    }
  } catch (err) {
    error.textContent = `No reply: ${err.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function refreshStatus(box) {
  const tick = async () => {
    if (document.hidden) return;
    const response = await fetch(box.dataset.refresh, { headers: { accept: "text/html" } });
    if (response.redirected) { window.location.reload(); return; }  // signed out meanwhile
    if (response.ok) box.innerHTML = await response.text();
  };
  setInterval(() => { tick().catch(() => {}); }, 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-copy]").forEach((b) => b.addEventListener("click", onCopy));
  const select = document.querySelector("[data-limit-target]");
  if (select) followLimit(select);
  const form = document.getElementById("try-form");
  if (form && window.fetch && window.ReadableStream) {
    form.addEventListener("submit", (event) => streamReply(form, event));
  }
  const status = document.querySelector("[data-refresh]");
  if (status) refreshStatus(status);
});

// Plots (Status, Usage): the server draws them from Prometheus; the links switch the span.
function loadPlots(box, url) {
  fetch(url, { headers: { accept: "text/html" } }).then(async (response) => {
    if (!response.ok || response.redirected) return;
    box.innerHTML = await response.text();
    box.querySelectorAll("[data-span]").forEach((link) => link.addEventListener("click", (e) => {
      e.preventDefault();
      loadPlots(box, url.replace(/span=[^&]+/, `span=${link.dataset.span}`));
    }));
  }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-plots]");
  if (box) loadPlots(box, box.dataset.plots);
});
