// agenthq dashboard: live updates from the event stream, step details, decisions.
// No framework, no build step: the pages work without this script, it only makes them live.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const FINISHED = ["succeeded", "failed", "skipped", "cancelled", "blocked"];

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    throw new Error(message);
  }
  return body;
}

function setState(el, state) {
  for (const cls of Array.from(el.classList)) if (cls.startsWith("s-")) el.classList.remove(cls);
  el.classList.add("s-" + state);
}

function liveEvents(runId, onEvent, extraKinds = []) {
  // Only what happens after the page was drawn: the page already shows everything before.
  const params = new URLSearchParams({ after: document.body.dataset.seq || "0" });
  if (runId) params.set("run", runId);
  const url = "/api/events/stream?" + params.toString();
  const source = new EventSource(url);
  const indicator = $("#live");
  source.onopen = () => indicator && indicator.classList.add("on");
  source.onerror = () => indicator && indicator.classList.remove("on");
  source.onmessage = (e) => onEvent(JSON.parse(e.data));
  for (const kind of ["step", "run", "approval.requested", "approval.decided", "approval.expired", "agent.quarantined", "agent.released", ...extraKinds]) {
    source.addEventListener(kind, (e) => onEvent(JSON.parse(e.data)));
  }
  return source;
}

// ---- run page -------------------------------------------------------------------------
function runPage() {
  const runId = document.body.dataset.run;
  let refreshTimer = null;
  const refreshTimeline = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      const box = $("#timeline");
      const response = await fetch(box.dataset.src, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    }, 400);
  };
  liveEvents(runId, (event) => {
    if (event.kind === "step" && event.step_id) {
      const node = $(`g.node[data-step="${CSS.escape(event.step_id)}"]`);
      if (node) setState(node, event.to);
      const badge = $(`[data-state-of="${CSS.escape(event.step_id)}"]`);
      if (badge) { setState(badge, event.to); badge.textContent = event.to.replace("_", " "); }
      // A prediction is about starting: once the step started (or ended) it is history.
      const guess = $(`[data-prediction-of="${CSS.escape(event.step_id)}"]`);
      if (guess && !["pending", "ready", "retrying", "awaiting_approval"].includes(event.to)) guess.remove();
      const tries = $(`[data-attempts-of="${CSS.escape(event.step_id)}"]`);
      if (tries && event.attempt) tries.textContent = event.attempt;
      if (selected === event.step_id) showStep(event.step_id);
      const done = $$("g.node").filter((n) => FINISHED.some((s) => n.classList.contains("s-" + s))).length;
      if ($("#run-done") && $$("g.node").length) $("#run-done").textContent = done;
      refreshTimeline();
    } else if (event.kind === "run" && event.to) {
      const badge = $("#run-state");
      setState(badge, event.to);
      badge.textContent = event.to.replace("_", " ");
      const cancel = $('[data-action="cancel"]');
      if (cancel && FINISHED.includes(event.to)) cancel.hidden = true;
    } else if (event.kind.startsWith("approval.")) {
      setTimeout(() => location.reload(), 300);
    }
  });
  let selected = null;
  let logTimer = null;
  async function showStep(stepId) {
    selected = stepId;
    $$("g.node.selected").forEach((n) => n.classList.remove("selected"));
    const node = $(`g.node[data-step="${CSS.escape(stepId)}"]`);
    if (node) node.classList.add("selected");
    $("#step-title").textContent = stepId;
    const detail = await api(`/api/runs/${runId}/steps/${encodeURIComponent(stepId)}`);
    const rows = [
      ["state", detail.state], ["attempts", detail.attempts.length],
      ["failure class", detail.failure_class || "–"], ["reason", detail.reason || "–"],
      ["outputs", JSON.stringify(detail.outputs)],
    ];
    const dl = document.createElement("dl");
    dl.className = "kv";
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
    const gates = document.createElement("ul");
    gates.className = "gates";
    for (const g of detail.gates) {
      const li = document.createElement("li");
      li.textContent = `#${g.attempt} ${g.phase} ${g.gate}: ${g.outcome} — ${g.reason}`;
      gates.append(li);
    }
    const box = $("#step-detail");
    box.replaceChildren(dl);
    if (detail.gates.length) { const h = document.createElement("h3"); h.textContent = "Gates"; box.append(h, gates); }
    if (detail.worktree) showDiff(stepId, detail.worktree, box);
    followLog(stepId, detail.attempts.length > 0);
  }
  async function showDiff(stepId, tree, box) {
    const h = document.createElement("h3");
    h.textContent = `Worktree: ${tree.state} (${tree.branch})`;
    box.append(h);
    if (!["review", "conflict", "kept"].includes(tree.state)) return;
    try {
      const answer = await api(`/api/runs/${runId}/steps/${encodeURIComponent(stepId)}/diff`);
      const pre = document.createElement("pre");
      pre.className = "diff";
      for (const line of answer.diff.split("\n")) {
        const span = document.createElement("span");
        span.className = line.startsWith("+") && !line.startsWith("+++") ? "add"
          : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "";
        span.textContent = line + "\n";
        pre.append(span);
      }
      box.append(pre);
    } catch (err) {
      const p = document.createElement("p"); p.className = "muted"; p.textContent = err.message; box.append(p);
    }
  }
  function followLog(stepId, hasAttempts) {
    clearTimeout(logTimer);
    const pre = $("#step-log");
    if (!hasAttempts) { pre.hidden = true; return; }
    pre.hidden = false;
    pre.textContent = "";
    let offset = null;
    const poll = async () => {
      if (selected !== stepId) return;
      const query = offset === null ? "tail=65536" : `offset=${offset}`;
      try {
        const chunk = await api(`/api/runs/${runId}/steps/${encodeURIComponent(stepId)}/logs?${query}`);
        if (offset === null && !chunk.text) pre.textContent = "(no output yet)";
        else if (chunk.text) pre.textContent = (pre.textContent === "(no output yet)" ? "" : pre.textContent) + chunk.text;
        offset = chunk.next_offset;
        pre.scrollTop = pre.scrollHeight;
        if (!chunk.finished) logTimer = setTimeout(poll, 700);
      } catch (err) { pre.textContent = String(err.message || err); }
    };
    poll();
  }
  $$("g.node").forEach((node) => {
    node.addEventListener("click", () => showStep(node.dataset.step));
    node.addEventListener("keydown", (e) => { if (e.key === "Enter") showStep(node.dataset.step); });
  });
  $$("[data-open-step]").forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); showStep(a.dataset.openStep); }));
  const cancel = $('[data-action="cancel"]');
  if (cancel) cancel.addEventListener("click", async () => {
    if (!confirm("Cancel this run? Running steps are stopped.")) return;
    cancel.disabled = true;
    try { await api(`/api/runs/${runId}/cancel`, { method: "POST" }); } catch (err) { alert(err.message); }
  });
  const rollback = $('[data-action="rollback"]');
  if (rollback) rollback.addEventListener("click", async () => {
    if (!confirm("Roll this run back? The compensation of each succeeded step runs, newest first, through the gates.")) return;
    rollback.disabled = true;
    try {
      const started = await api(`/api/runs/${runId}/rollback`, { method: "POST" });
      location.href = `/runs/${encodeURIComponent(started.id)}`;
    } catch (err) { alert(err.message); rollback.disabled = false; }
  });
}

// ---- decisions (run page and approvals page) ------------------------------------------
function decisions() {
  $$("form.decide").forEach((form) => {
    form.addEventListener("submit", (e) => e.preventDefault());
    $$("button[data-decision]", form).forEach((button) => button.addEventListener("click", async () => {
      const decision = button.dataset.decision;
      const body = { note: form.note.value || null };
      if (form.extend_usd) {
        if (decision === "approve" && !form.extend_usd.value) { form.extend_usd.focus(); return; }
        body.extend_usd = form.extend_usd.value ? Number(form.extend_usd.value) : null;
      }
      $$("button", form).forEach((b) => (b.disabled = true));
      try {
        await api(`/api/approvals/${form.dataset.approval}/${decision}`, { method: "POST", body: JSON.stringify(body) });
        const card = form.closest(".approval");
        card.replaceChildren(Object.assign(document.createElement("p"), { className: "ok", textContent: decision === "approve" ? "Approved." : "Rejected." }));
      } catch (err) {
        alert(err.message);
        $$("button", form).forEach((b) => (b.disabled = false));
      }
    }));
  });
  $$("button[data-alert-action]").forEach((button) => button.addEventListener("click", async () => {
    const action = button.dataset.alertAction;
    const note = prompt(`${action === "ack" ? "Acknowledge" : "Resolve"} alert ${button.dataset.id}? A note (optional):`);
    if (note === null) return;
    button.disabled = true;
    try {
      await api(`/api/alerts/${button.dataset.id}/${action}`, { method: "POST", body: JSON.stringify({ note: note || null }) });
      location.reload();
    } catch (err) { alert(err.message); button.disabled = false; }
  }));
  $$("button[data-automation-action]").forEach((button) => button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/api/automations/${encodeURIComponent(button.dataset.id)}/${button.dataset.automationAction}`, { method: "POST" });
      location.reload();
    } catch (err) { alert(err.message); button.disabled = false; }
  }));
  $$("button[data-release]").forEach((button) => button.addEventListener("click", async () => {
    const note = prompt(`Release agent ${button.dataset.release}? Say why (kept in the audit log):`);
    if (note === null) return;
    button.disabled = true;
    try {
      await api(`/api/agents/${encodeURIComponent(button.dataset.release)}/release`, { method: "POST", body: JSON.stringify({ note }) });
      location.reload();
    } catch (err) { alert(err.message); button.disabled = false; }
  }));
}

// ---- overview -------------------------------------------------------------------------
function overviewPage() {
  let timer = null;
  liveEvents(null, (event) => {
    if (event.kind === "run" || event.kind === "run.created" || event.kind.startsWith("approval.")) {
      clearTimeout(timer);
      timer = setTimeout(() => location.reload(), 500);
    }
  }, ["run.created"]);
}

async function approvalCount() {
  try {
    const body = await api("/api/approvals");
    const pill = $("#nav-approvals");
    if (pill && body.approvals.length) { pill.textContent = body.approvals.length; pill.hidden = false; }
  } catch (_) { /* signed-out pages */ }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "login" || page === "link") return;
  decisions();
  approvalCount();
  if (page === "run") runPage();
  else if (page === "overview") overviewPage();
  else if (page === "approvals") liveEvents(null, (e) => { if (e.kind === "approval.requested") location.reload(); });
  else if (page === "alerts") liveEvents(null, (e) => { if (e.kind.startsWith("alert.")) location.reload(); }, ["alert.raised", "alert.acknowledged", "alert.resolved"]);
  else if (page === "schedules") liveEvents(null, (e) => { if (e.kind === "run.created" && e.details && e.details.origin) location.reload(); }, ["run.created"]);
});
