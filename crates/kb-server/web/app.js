// kb's chat page: asks POST /v1/ask/stream with the saved API key and renders the streamed
// answer. Everything from the server is inserted as text (textContent, text nodes), never as
// HTML.
"use strict";

const KEY_STORAGE = "kb.apiKey";
const $ = (id) => document.getElementById(id);

/** Prior messages of this conversation, sent with each follow-up. */
let history = [];

function savedKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function showKeyState() {
  const key = savedKey();
  $("key-form").hidden = key !== "";
  $("key-saved").hidden = key === "";
  $("key-hint").textContent = key ? `Key …${key.slice(-4)}` : "";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Split an SSE byte stream into {event, data} records. */
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

/** Render answer text into `target`: plain text, with each [n] naming a known source as a button. */
function renderAnswer(target, text, sources) {
  target.replaceChildren();
  const marker = /\[(\d+)\]/g;
  let last = 0;
  for (const match of text.matchAll(marker)) {
    const n = Number(match[1]);
    if (!sources.has(n)) continue;
    target.append(document.createTextNode(text.slice(last, match.index)));
    const button = el("button", "cite", `[${n}]`);
    button.type = "button";
    button.dataset.n = String(n);
    button.setAttribute("aria-label", `Source ${n}: ${sources.get(n).title}`);
    button.addEventListener("click", () => showPassage(sources.get(n)));
    target.append(button);
    last = match.index + match[0].length;
  }
  target.append(document.createTextNode(text.slice(last)));
}

function showPassage(source) {
  $("passage-title").textContent = `[${source.n}] ${source.title}`;
  $("passage-path").textContent = source.path;
  $("passage-section").textContent = (source.heading_path || []).join(" › ");
  $("passage-text").textContent = source.snippet;
  $("passage").hidden = false;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    // Clipboard API refused (insecure origin, permissions): fall back to a selection copy.
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    button.textContent = ok ? "Copied" : "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy answer"; }, 1500);
}

function errorMessage(body, status) {
  try {
    const parsed = JSON.parse(body);
    if (parsed.error && parsed.error.message) return parsed.error.message;
  } catch { /* not JSON */ }
  return `request failed (HTTP ${status})`;
}

async function ask(question) {
  const log = $("log");
  log.append(el("li", "turn user", question));
  const turn = el("li", "turn assistant");
  const status = el("p", "status", "Searching…");
  const rewrite = el("p", "rewrite");
  rewrite.hidden = true;
  const text = el("div", "answer-text");
  const actions = el("div", "actions");
  actions.hidden = true;
  const copy = el("button", "copy", "Copy answer");
  copy.type = "button";
  actions.append(copy);
  turn.append(rewrite, status, text, actions);
  log.append(turn);
  turn.scrollIntoView({ block: "end" });

  const sources = new Map();
  let answer = "";
  const headers = { "content-type": "application/json" };
  const key = savedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers,
      body: JSON.stringify({ question, messages: history }),
    });
  } catch (e) {
    status.textContent = `Could not reach kb: ${e.message}`;
    status.classList.add("error");
    return;
  }
  if (!response.ok) {
    status.textContent = errorMessage(await response.text(), response.status);
    status.classList.add("error");
    if (response.status === 401) {
      localStorage.removeItem(KEY_STORAGE);
      showKeyState();
    }
    return;
  }
  status.textContent = "Answering…";
  let finished = false;
  try {
    for await (const { event, data } of sseEvents(response)) {
      const payload = JSON.parse(data);
      if (event === "sources") {
        for (const source of payload.sources) sources.set(source.n, source);
        if (payload.rewrite) {
          rewrite.textContent = `Searched for: ${payload.rewrite.question}`;
          rewrite.hidden = false;
        }
      } else if (event === "delta") {
        answer += payload.text;
        renderAnswer(text, answer, sources);
      } else if (event === "done") {
        answer = payload.answer;
        renderAnswer(text, answer, sources);
        status.hidden = true;
        finished = true;
        if (payload.citations.length) {
          const list = el("ol", "sources");
          for (const c of payload.citations) {
            const item = el("li", "", `${c.title} — ${c.path}`);
            item.value = c.n;
            list.append(item);
          }
          turn.append(list);
        }
      } else if (event === "error") {
        status.textContent = `The answer is incomplete: ${payload.error.message}`;
        status.classList.add("error");
      }
    }
  } catch (e) {
    status.textContent = `The answer is incomplete: ${e.message}`;
    status.classList.add("error");
  }
  if (finished) {
    history.push({ role: "user", content: question }, { role: "assistant", content: answer });
    actions.hidden = false;
    copy.addEventListener("click", () => copyText(answer, copy));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showKeyState();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    localStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    showKeyState();
    $("question").focus();
  });
  $("change-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    showKeyState();
    $("api-key").focus();
  });
  $("passage-close").addEventListener("click", () => { $("passage").hidden = true; });
  $("new-chat").addEventListener("click", () => {
    history = [];
    $("log").replaceChildren();
    $("passage").hidden = true;
  });
  const form = $("ask-form");
  const input = $("question");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    $("ask").disabled = true;
    $("intro").hidden = true;
    try {
      await ask(question);
    } finally {
      $("ask").disabled = false;
      input.focus();
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
});
