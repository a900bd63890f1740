// The handoff console: lists interrupted r1agent threads through the LangGraph API and resumes each with
// a human agent's reply. Customer and server text only ever reaches the page through textContent (or
// text nodes): never innerHTML, so a message cannot become markup or script.

const TOKEN_KEY = "r1agent.console.token";
const DEFAULTS = {
  assistant_id: "r1agent",
  max_reply_chars: 8000,
  poll_seconds: 10,
  page_size: 50,
  max_pages: 10,
  max_messages: 40,
};
const REASONS = {
  requested: "The customer asked for a person",
  out_of_scope: "Out of scope for r1agent",
  low_quality: "r1agent's draft scored below the quality threshold",
};

let settings = { ...DEFAULTS };
let timer = null;
let refreshing = false;
/** thread_id -> {element, interruptId}: cards on screen, kept across refreshes so typed replies survive. */
const cards = new Map();

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A new element; `text` becomes its textContent, children strings become text nodes. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// --- the API -------------------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function detailOf(data) {
  if (data && typeof data === "object") {
    const detail = data.detail ?? data.message ?? data.error;
    if (typeof detail === "string") return detail.slice(0, 300);
    if (detail !== undefined) return JSON.stringify(detail).slice(0, 300);
  }
  return "";
}

function describe(status, data) {
  const detail = detailOf(data);
  const more = detail ? ` The server said: ${detail}` : "";
  switch (status) {
    case 401:
      return `Not signed in (401): the server needs a valid human agent token; enter it above.${more}`;
    case 403:
      return `Not allowed (403): this token may not do that; it needs the human agent role.${more}`;
    case 404:
      return `Not found (404): the thread is gone, or this token cannot see it.${more}`;
    case 409:
      return `The thread is busy (409): another run is in progress. Refresh and try again.${more}`;
    case 422:
      return `The server refused the request (422).${more}`;
    default:
      return status >= 500 ? `Server error (${status}).${more}` : `Request failed (${status}).${more}`;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  let text;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } catch {
    throw new ApiError(0, "Cannot reach the server (network error): check that it is running, then press Refresh.");
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, describe(response.status, data));
  return data;
}

// --- messages to the agent -----------------------------------------------------------------------------

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

function showTokenState() {
  $("token-state").textContent = token() ? "A token is set for this tab." : "No token set.";
}

// --- rendering -----------------------------------------------------------------------------------------

function messageText(message) {
  const content = message?.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((block) => {
      if (typeof block === "string") return block;
      if (block?.type === "text") return String(block.text ?? "");
      if (block?.type === "image" || block?.type === "image_url") return `[image${block.name ? `: ${block.name}` : ""}]`;
      if (block?.type === "audio") return `[voice note${block.name ? `: ${block.name}` : ""}]`;
      return `[${String(block?.type ?? "attachment")}]`;
    })
    .join(" ");
}

function speaker(message) {
  if (message?.type === "human") return ["Customer", "customer"];
  if (message?.name === "human_agent") return ["Human agent", "human-agent"];
  if (message?.type === "ai") return ["r1agent", "agent"];
  return [String(message?.type ?? "message"), "other"];
}

function percent(value) {
  return typeof value === "number" && Number.isFinite(value) ? `${Math.round(value * 100)}%` : "unknown";
}

function when(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "unknown" : date.toLocaleString();
}

function conversation(messages) {
  const list = Array.isArray(messages) ? messages : [];
  const shown = list.slice(-settings.max_messages);
  const ol = el("ol", { class: "conversation" });
  for (const message of shown) {
    const [who, kind] = speaker(message);
    ol.append(el("li", { class: `message ${kind}` }, el("span", { class: "who", text: who }), el("p", { text: messageText(message) })));
  }
  const hidden = list.length - shown.length;
  return hidden > 0 ? [el("p", { class: "help", text: `${hidden} earlier messages not shown.` }), ol] : [ol];
}

function pendingInterrupt(thread) {
  for (const list of Object.values(thread?.interrupts ?? {})) {
    for (const item of Array.isArray(list) ? list : []) {
      if (item?.value && typeof item.value === "object") return item;
    }
  }
  return null;
}

function fact(dl, term, value) {
  dl.append(el("dt", { text: term }), el("dd", { text: value }));
}

function renderCard(thread, pending) {
  const payload = pending.value;
  const tid = thread.thread_id;
  const ticket = String(payload.ticket_id ?? "unknown");
  const headingId = `handoff-${tid}`;
  const replyId = `reply-${tid}`;
  const helpId = `reply-help-${tid}`;
  const article = el("article", {
    class: "handoff",
    "aria-labelledby": headingId,
    dataset: { threadId: tid, ticketId: ticket, status: "open" },
  });
  const facts = el("dl", { class: "facts" });
  fact(facts, "Reason", REASONS[payload.reason] ?? String(payload.reason ?? "unknown"));
  fact(facts, "Intent", String(payload.intent ?? "unknown"));
  fact(facts, "Confidence", percent(payload.confidence));
  if (typeof thread.metadata?.owner === "string") fact(facts, "Customer", thread.metadata.owner);
  fact(facts, "Waiting since", when(thread.updated_at));
  fact(facts, "Thread", tid);

  const reply = el("textarea", {
    id: replyId,
    name: "reply",
    rows: "4",
    maxlength: String(settings.max_reply_chars),
    required: "",
    "aria-describedby": helpId,
    class: "reply",
  });
  const useDraft = el("button", { type: "button", class: "use-draft", text: "Use the draft" });
  useDraft.disabled = !payload.draft;
  useDraft.addEventListener("click", () => {
    reply.value = String(payload.draft ?? "");
    reply.focus();
  });
  const send = el("button", { type: "submit", class: "send", text: "Send" });
  const status = el("p", { class: "send-status", role: "status", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "reply-form" },
    el("label", { for: replyId, text: `Reply to the customer (ticket ${ticket})` }),
    reply,
    el("p", { id: helpId, class: "help", text: `Sent to the customer as is; up to ${settings.max_reply_chars} characters.` }),
    el("div", { class: "actions" }, send, useDraft),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void resume(article, tid, reply, send, status);
  });

  article.append(
    el("h3", { id: headingId, text: `Ticket ${ticket}` }),
    facts,
    el("h4", { text: "Summary" }),
    el("p", { class: "summary", text: String(payload.summary ?? "") }),
    el("h4", { text: "Conversation" }),
    ...conversation(thread.values?.messages),
    el("h4", { text: "Draft answer (not sent to the customer)" }),
    el("blockquote", { class: "draft", text: payload.draft ? String(payload.draft) : "(no draft)" }),
    form,
  );
  return article;
}

function updateCount() {
  const open = [...cards.values()].filter((card) => card.element.dataset.status !== "gone").length;
  $("open-count").textContent = `(${open})`;
  $("empty").hidden = cards.size > 0;
}

function reconcile(threads) {
  const seen = new Set();
  for (const thread of threads) {
    const pending = pendingInterrupt(thread);
    if (!pending || typeof thread?.thread_id !== "string") continue;
    seen.add(thread.thread_id);
    const known = cards.get(thread.thread_id);
    if (known && known.interruptId === pending.id) continue; // unchanged: keep what the agent is typing
    const card = renderCard(thread, pending);
    if (known) {
      card.querySelector("textarea").value = known.element.querySelector("textarea")?.value ?? "";
      known.element.replaceWith(card);
    } else {
      $("handoffs").append(card);
    }
    cards.set(thread.thread_id, { element: card, interruptId: pending.id });
  }
  for (const [tid, known] of cards) {
    const status = known.element.dataset.status;
    if (seen.has(tid) || status === "sending") continue;
    const typed = known.element.querySelector("textarea")?.value.trim();
    if (!typed) {
      known.element.remove();
      cards.delete(tid);
    } else if (status !== "gone") {
      // Answered elsewhere while this agent typed: keep their text on screen rather than lose it.
      known.element.dataset.status = "gone";
      known.element.querySelector("button.send").disabled = true;
      known.element
        .querySelector(".send-status")
        .replaceChildren("This handoff is no longer waiting (answered elsewhere?). Your text is kept here.");
    }
  }
  updateCount();
}

// --- actions -------------------------------------------------------------------------------------------

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  $("handoffs").setAttribute("aria-busy", "true");
  try {
    const threads = [];
    let complete = false;
    // Page through all of them, oldest first, up to a bound: a long queue must not hide the newest.
    for (let page = 0; page < settings.max_pages && !complete; page += 1) {
      const batch = await api("POST", "/threads/search", {
        status: "interrupted",
        limit: settings.page_size,
        offset: page * settings.page_size,
        sort_by: "updated_at",
        sort_order: "asc",
      });
      const list = Array.isArray(batch) ? batch : [];
      threads.push(...list);
      complete = list.length < settings.page_size;
    }
    clearError();
    reconcile(threads);
    const more = complete ? "" : ` Showing the ${threads.length} oldest; answer some to see the rest.`;
    $("last-refresh").textContent = `Updated at ${new Date().toLocaleTimeString()}.${more}`;
  } catch (error) {
    showError(error instanceof ApiError ? error.message : `Unexpected error: ${String(error)}`);
  } finally {
    refreshing = false;
    $("handoffs").removeAttribute("aria-busy");
  }
}

function lastMessage(thread) {
  const messages = thread?.values?.messages;
  return Array.isArray(messages) && messages.length ? messages[messages.length - 1] : null;
}

async function resume(article, tid, reply, send, status) {
  const text = reply.value.trim();
  if (!text) {
    status.textContent = "Write a reply first.";
    reply.focus();
    return;
  }
  article.dataset.status = "sending";
  send.disabled = true;
  reply.readOnly = true;
  status.textContent = "Sending…";
  const path = `/threads/${encodeURIComponent(tid)}`;
  try {
    const out = await api("POST", `${path}/runs/wait`, {
      assistant_id: settings.assistant_id,
      command: { resume: text },
    });
    if (out && typeof out === "object" && out.__error__) {
      throw new ApiError(0, `The thread did not resume: ${detailOf(out.__error__) || "the run failed"}`);
    }
    const thread = await api("GET", path);
    if (thread?.status !== "idle") {
      throw new ApiError(0, `The reply was sent but the thread is ${String(thread?.status)}: refresh to see it.`);
    }
    clearError();
    resolved(article, tid, messageText(lastMessage(thread)));
  } catch (error) {
    article.dataset.status = "open";
    send.disabled = false;
    reply.readOnly = false;
    status.textContent = "Not sent: your text is kept.";
    showError(error instanceof ApiError ? error.message : `Unexpected error: ${String(error)}`);
  }
}

function resolved(article, tid, last) {
  cards.delete(tid);
  article.dataset.status = "resolved";
  article.querySelector("form").replaceWith(
    el(
      "div",
      { class: "outcome" },
      el("p", { class: "resolved-note", text: "Resolved: the thread is idle again. The customer's last message from us:" }),
      el("blockquote", { class: "last-message", text: last }),
    ),
  );
  $("resolved").prepend(article);
  updateCount();
}

function schedule() {
  if (timer !== null) clearInterval(timer);
  timer = null;
  if ($("auto-refresh").checked) {
    timer = setInterval(() => {
      if (!document.hidden) void refresh();
    }, settings.poll_seconds * 1000);
  }
}

function forgetHandoffs() {
  for (const { element } of cards.values()) element.remove();
  cards.clear();
  $("resolved").replaceChildren();
  updateCount();
}

async function start() {
  try {
    const response = await fetch("/console/config.json", { cache: "no-store" });
    if (response.ok) settings = { ...DEFAULTS, ...(await response.json()) };
  } catch {
    // The defaults match the server's; the list refresh below reports a server that is down.
  }
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("token");
    const value = input.value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    input.value = ""; // don't leave the secret in the field
    showTokenState();
    forgetHandoffs(); // what the previous token could see is not this one's to show
    void refresh();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    showTokenState();
    forgetHandoffs();
  });
  $("refresh").addEventListener("click", () => void refresh());
  $("auto-refresh").addEventListener("change", schedule);
  showTokenState();
  updateCount();
  schedule();
  await refresh();
}

void start();
