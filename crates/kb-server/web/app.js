// kb's chat page: asks POST /v1/ask/stream with the saved API key and renders the streamed
// answer; a citation opens the cited passage beside it, in its context
// (GET /v1/documents/{id}/chunks/{n}). Everything from the server is inserted as text
// (textContent, text nodes, DOM nodes built by markdown.js), never as HTML.
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

/** The request headers carrying the saved key. */
function authHeaders(extra) {
  const headers = Object.assign({}, extra);
  const key = savedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  return headers;
}

/** Counts passage requests, so that a slow answer to an earlier click is dropped. */
let passageRequests = 0;

/** Only http(s) links become clickable (the server builds them; this is a second check). */
function safeLink(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** The passage panel's head: title, place in the file, section, e-mail headers, link. */
function showSourceHead(source) {
  $("passage-title").textContent = `[${source.n}] ${source.title}`;
  $("passage-location").textContent = source.location_label || "";
  $("passage-location").hidden = !source.location_label;
  $("passage-section").textContent = (source.heading_path || []).join(" › ");
  const headers = $("passage-message");
  headers.replaceChildren();
  const message = source.message;
  if (message) {
    const rows = [
      ["From", message.from],
      ["To", (message.to || []).join(", ")],
      ["Cc", (message.cc || []).join(", ")],
      ["Date", message.date],
      ["Subject", message.subject],
    ];
    for (const [name, value] of rows) {
      if (!value) continue;
      headers.append(el("dt", "", name), el("dd", "", value));
    }
  }
  headers.hidden = headers.childElementCount === 0;
  const link = $("passage-link");
  const href = source.source_url ? safeLink(source.source_url) : null;
  link.hidden = !href;
  if (href) link.href = href;
  else link.removeAttribute("href");
}

/** One chunk of the passage, rendered as a person reads it. */
function passageSection(chunk, cited) {
  const section = el("section", cited ? "chunk cited" : "chunk context");
  section.dataset.n = String(chunk.n);
  if (cited) section.id = "passage-cited";
  if (chunk.location_label && !cited) {
    section.append(el("p", "chunk-location", chunk.location_label));
  }
  section.append(Markdown.render(chunk.text));
  return section;
}

/** Bytes `from..to` of `text` (UTF-8), as text. */
function byteSlice(text, from, to) {
  const bytes = new TextEncoder().encode(text);
  return new TextDecoder().decode(bytes.slice(Math.max(0, from), Math.min(bytes.length, to)));
}

/**
 * Render the passage: the cited chunk whole and highlighted, its neighbours around it.
 * Chunks may overlap (their byte ranges say by how much): a neighbour shows only what the
 * cited chunk and the neighbours nearer to it do not.
 */
function showContext(data) {
  const body = $("passage-text");
  body.replaceChildren();
  const before = data.before.map((chunk, i) => {
    const next = i + 1 < data.before.length ? data.before[i + 1] : data.chunk;
    const keep = next.byte_range[0] - chunk.byte_range[0];
    const text = keep < chunk.byte_range[1] - chunk.byte_range[0]
      ? byteSlice(chunk.text, 0, keep) : chunk.text;
    return passageSection(Object.assign({}, chunk, { text }), false);
  });
  const after = data.after.map((chunk, i) => {
    const previous = i === 0 ? data.chunk : data.after[i - 1];
    const skip = previous.byte_range[1] - chunk.byte_range[0];
    const text = skip > 0 ? byteSlice(chunk.text, skip, Infinity) : chunk.text;
    return passageSection(Object.assign({}, chunk, { text }), false);
  });
  body.append(...before, passageSection(data.chunk, true), ...after);
  const cited = $("passage-cited");
  if (cited) cited.scrollIntoView({ block: "nearest" });
}

async function showPassage(source) {
  const request = ++passageRequests;
  showSourceHead(source);
  const status = $("passage-status");
  status.hidden = false;
  status.classList.remove("error");
  status.textContent = "Loading the passage in its context…";
  // The snippet at once; the passage with its neighbours when it arrives.
  $("passage-text").replaceChildren(
    passageSection({ n: source.chunk, text: source.snippet }, true));
  $("passage").hidden = false;
  document.body.classList.add("passage-open");
  let response;
  try {
    const url = `/v1/documents/${encodeURIComponent(source.document)}` +
      `/chunks/${encodeURIComponent(source.chunk)}?context=2`;
    response = await fetch(url, { headers: authHeaders() });
    if (request !== passageRequests) return;
    if (!response.ok) {
      status.textContent = `Only the cited text can be shown: ${
        errorMessage(await response.text(), response.status)}`;
      status.classList.add("error");
      return;
    }
    const data = await response.json();
    if (request !== passageRequests) return;
    showSourceHead(Object.assign({}, source, {
      title: data.title,
      source_url: data.source_url,
      message: data.message,
      location_label: data.chunk.location_label,
    }));
    showContext(data);
    status.hidden = true;
  } catch (e) {
    if (request !== passageRequests) return;
    status.textContent = `Only the cited text can be shown: ${e.message}`;
    status.classList.add("error");
  }
}

function closePassage() {
  passageRequests++;
  $("passage").hidden = true;
  document.body.classList.remove("passage-open");
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
  const headers = authHeaders({ "content-type": "application/json" });
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
            const place = c.location_label ? ` (${c.location_label})` : "";
            const item = el("li", "", `${c.title}${place}`);
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
  $("passage-close").addEventListener("click", closePassage);
  $("new-chat").addEventListener("click", () => {
    history = [];
    $("log").replaceChildren();
    closePassage();
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
