// llaisys web chat: plain JS, talks to this server's OpenAI-compatible API.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "llaisys.conversations";
const SETTINGS = "llaisys.settings";
const FIELDS = ["model", "system", "temperature", "top_p", "max_tokens", "api_key"];

let conversations = JSON.parse(sessionStorage.getItem(STORE) || "[]");
let current = null;       // the conversation shown
let inflight = null;      // {id, controller, stopped}

function save() {
  sessionStorage.setItem(STORE, JSON.stringify(conversations));
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---------------------------------------------------------------- settings
function loadSettings() {
  const saved = JSON.parse(sessionStorage.getItem(SETTINGS) || "{}");
  for (const f of FIELDS) {
    if (f in saved && f !== "model") $(f).value = saved[f];
    $(f).addEventListener("change", () => {
      const now = {};
      for (const g of FIELDS) now[g] = $(g).value;
      sessionStorage.setItem(SETTINGS, JSON.stringify(now));
    });
  }
  return saved.model;
}

async function loadModels(preferred) {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    $("model").innerHTML = "";
    for (const m of body.data) {
      const opt = document.createElement("option");
      opt.value = opt.textContent = m.id;
      $("model").appendChild(opt);
    }
    if (preferred && body.data.some((m) => m.id === preferred)) $("model").value = preferred;
  } catch (e) {
    setStatus(`Could not list models: ${e.message}`);
  }
}

// ---------------------------------------------------------------- conversations
function newConversation() {
  if (inflight) return;
  current = { id: Date.now().toString(36), title: "New conversation", messages: [] };
  conversations.unshift(current);
  save();
  render();
}

function renderList() {
  const ul = $("conversations");
  ul.innerHTML = "";
  for (const c of conversations) {
    const li = document.createElement("li");
    li.textContent = c.title;
    li.title = c.title;
    if (c === current) li.classList.add("active");
    li.addEventListener("click", () => {
      if (inflight) return;
      current = c;
      render();
    });
    ul.appendChild(li);
  }
}

function messageElement(msg) {
  const div = document.createElement("div");
  div.className = `msg ${msg.role}`;
  const role = document.createElement("div");
  role.className = "role";
  role.textContent = msg.role;
  div.appendChild(role);
  const details = document.createElement("details");
  details.className = "reasoning";  // collapsed unless the user opens it
  const summary = document.createElement("summary");
  summary.textContent = "Reasoning";
  const reasoning = document.createElement("div");
  reasoning.className = "reasoning-text";
  details.append(summary, reasoning);
  const content = document.createElement("div");
  content.className = "content";
  const note = document.createElement("div");
  note.className = "note";
  div.append(details, content, note);
  const update = () => {
    details.hidden = !msg.reasoning;
    reasoning.textContent = msg.reasoning || "";
    content.textContent = msg.content || "";
    note.textContent = msg.note || "";
    note.classList.toggle("error", Boolean(msg.error));
  };
  update();
  return { div, update };
}

function render() {
  renderList();
  const box = $("messages");
  box.innerHTML = "";
  if (!current) return;
  for (const m of current.messages) box.appendChild(messageElement(m).div);
  box.scrollTop = box.scrollHeight;
}

// ---------------------------------------------------------------- sending
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  $("new-chat").disabled = busy;
}

async function send(text) {
  if (!current) newConversation();
  const conv = current;
  conv.messages.push({ role: "user", content: text });
  if (conv.messages.length === 1) conv.title = text.slice(0, 60);
  const reply = { role: "assistant", content: "", reasoning: "", note: "" };
  conv.messages.push(reply);
  save();
  render();
  const view = messageElement(reply);
  $("messages").lastChild.replaceWith(view.div);

  const history = conv.messages.slice(0, -1).map((m) => ({ role: m.role, content: m.content }));
  const system = $("system").value.trim();
  if (system) history.unshift({ role: "system", content: system });
  const body = {
    model: $("model").value || undefined,
    messages: history,
    stream: true,
    temperature: Number($("temperature").value),
    top_p: Number($("top_p").value),
  };
  if ($("max_tokens").value) body.max_tokens = Number($("max_tokens").value);
  const controller = new AbortController();
  inflight = { id: null, controller, stopped: false };
  setBusy(true);
  setStatus("Waiting for the model...");
  let finish = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error(err.error ? err.error.message : `HTTP ${response.status}`);
    }
    setStatus("Generating...");
    for await (const data of sseEvents(response)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      inflight.id = chunk.id;
      for (const choice of chunk.choices || []) {
        const d = choice.delta || {};
        if (d.reasoning_content) reply.reasoning += d.reasoning_content;
        if (d.content) reply.content += d.content;
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      view.update();
      $("messages").scrollTop = $("messages").scrollHeight;
    }
    if (finish === "abort" || inflight.stopped) reply.note = "[stopped]";
    else if (finish === "length") reply.note = "[max tokens reached]";
    setStatus(finish === "abort" ? "Request cancelled." : "");
  } catch (e) {
    if (inflight.stopped) {
      reply.note = "[stopped]";
      setStatus("Request cancelled.");
    } else {
      reply.note = `Error: ${e.message}`;
      reply.error = true;
      setStatus("");
    }
  } finally {
    view.update();
    inflight = null;
    setBusy(false);
    save();
    renderList();
  }
}

async function stop() {
  if (!inflight || inflight.stopped) return;
  const run = inflight;
  run.stopped = true;
  setStatus("Cancelling...");
  if (run.id) {
    // Cancel on the server; the stream then ends with finish_reason "abort".
    try {
      await fetch(`/v1/requests/${encodeURIComponent(run.id)}/cancel`,
                  { method: "POST", headers: headers() });
    } catch (e) { /* the disconnect below cancels it too */ }
  }
  // Closing the connection also aborts the request server-side.
  setTimeout(() => { if (inflight === run) run.controller.abort(); }, run.id ? 2000 : 0);
}

// ---------------------------------------------------------------- wiring
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || inflight) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", stop);
$("new-chat").addEventListener("click", newConversation);

const preferredModel = loadSettings();
loadModels(preferredModel);
current = conversations[0] || null;
if (!current) newConversation();
else render();
