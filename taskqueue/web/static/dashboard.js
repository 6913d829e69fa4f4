// taskqueue dashboard: reads only the HTTP API (paths relative to <html data-api>), refreshes
// every 2 s while the tab is visible, and sends write actions with the token as a bearer header.
// Every value from the server reaches the page through textContent (no HTML injection).
import * as fmt from "./format.js";

const API = document.documentElement.dataset.api || "./";
const REFRESH_MS = 2000;
const PAGE = 20;
const DEAD_PAGE = 10;
const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

const state = {
  queue: null, jobState: "queued", jobsOffset: 0, deadOffset: 0, timer: null,
  workersSeen: [], busy: false, now: Date.now(), armedDelete: null,
};

// -- DOM helpers --------------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k in el && k !== "list") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}
function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}
const tag = (text, cls = text) => h("span", { class: `tag ${cls}` }, text);
function toast(text) {
  let box = $("#toasts");
  if (!box) { box = h("div", { id: "toasts", class: "toasts" }); document.body.append(box); }
  const t = h("div", { class: "toast", role: "status" }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}

// -- API ----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, status, path = "") { super(message); this.status = status; this.path = path; }
}

async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(API + path, { cache: "no-store", ...options });
  } catch (err) {
    throw new ApiError(`the API at ${new URL(API, location.href).href} does not answer (${err.message})`, 0);
  }
  let body = null;
  const text = await res.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = { detail: text }; }
  if (!res.ok) {
    const why = body && (body.reason || body.detail || body.error || body.message);
    throw new ApiError(why ? String(typeof why === "string" ? why : JSON.stringify(why)) : `HTTP ${res.status}`, res.status, path);
  }
  return body;
}

function askToken() {
  const dialog = $("#token-dialog");
  $("#token-input").value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const value = dialog.returnValue === "ok" ? $("#token-input").value.trim() : "";
      if (value) sessionStorage.setItem("tq-token", value);
      resolve(value || null);
    }, { once: true });
    dialog.showModal();
  });
}

/** A write action: asks for the token once per tab, sends it as a bearer header. */
async function write(method, path, done) {
  let token = sessionStorage.getItem("tq-token") || await askToken();
  if (!token) return;
  try {
    const body = await api(path, { method, headers: { Authorization: `Bearer ${token}` } });
    toast(done(body));
  } catch (err) {
    if (err.status === 401 || err.status === 403) sessionStorage.removeItem("tq-token");
    toast(`${method} ${path} failed: ${err.message}`);
  }
  refresh();
}

// -- charts -------------------------------------------------------------------------------------
function size(svg) {
  const r = svg.getBoundingClientRect();
  const w = Math.max(200, Math.round(r.width)), hgt = Math.max(60, Math.round(r.height));
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  return [w, hgt];
}

function throughputChart(timeline) {
  const svg = $("#throughput-chart");
  const [w, hgt] = size(svg);
  const t = timeline.total;
  const series = { ok: t.succeeded, bad: t.failed };
  const total = t.succeeded.reduce((a, b) => a + b, 0) + t.failed.reduce((a, b) => a + b, 0);
  svg.dataset.total = String(total);
  svg.dataset.dead = String(t.dead.reduce((a, b) => a + b, 0));
  const plot = hgt - 16;
  const { max, bars } = fmt.stackedBars(series, w, plot);
  const nodes = [];
  for (const f of [0, 0.5, 1]) {
    const y = plot - f * plot + 0.5;
    nodes.push(s("line", { class: "grid", x1: 28, x2: w, y1: y, y2: y }));
    const label = s("text", { x: 0, y: Math.max(10, y + 3) });
    label.textContent = fmt.count(max * f);
    nodes.push(label);
  }
  bars.forEach((b, i) => {
    for (const seg of b.segs) {
      const r = s("rect", { class: seg.name, x: b.x.toFixed(1), y: seg.y.toFixed(1), width: b.w.toFixed(1), height: seg.h.toFixed(1) });
      const tip = s("title");
      tip.textContent = `${fmt.clock(timeline.minutes[i])}: ${t.succeeded[i]} succeeded, ${t.failed[i]} failed, ${t.dead[i]} dead`;
      r.append(tip);
      nodes.push(r);
    }
  });
  const n = timeline.minutes.length;
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    if (i < 0 || !bars[i]) continue;
    const label = s("text", { x: Math.min(bars[i].x, w - 30), y: hgt - 2 });
    label.textContent = fmt.clock(timeline.minutes[i]);
    nodes.push(label);
  }
  svg.replaceChildren(...nodes);
}

function queueChart(queues) {
  const svg = $("#queue-chart");
  const names = Object.keys(queues);
  svg.style.height = `${Math.max(60, names.length * 26 + 8)}px`;
  const [w] = size(svg);
  if (!names.length) {
    const t = s("text", { class: "empty", x: 8, y: 30 });
    t.textContent = "no queue used yet";
    svg.replaceChildren(t);
    return;
  }
  const max = fmt.niceMax(Math.max(...names.map((n) => queues[n].queued + queues[n].scheduled + queues[n].active)));
  const left = Math.min(140, w * 0.35), right = 90, span = w - left - right;
  const nodes = [];
  names.forEach((name, i) => {
    const q = queues[name], y = 4 + i * 26;
    const label = s("text", { x: 0, y: y + 14 });
    label.textContent = name.length > 20 ? `${name.slice(0, 19)}…` : name;
    nodes.push(label);
    let x = left;
    for (const [cls, v] of [["q", q.queued], ["s", q.scheduled], ["a", q.active]]) {
      const bw = (v / max) * span;
      if (bw > 0) {
        const r = s("rect", { class: cls, x: x.toFixed(1), y, width: bw.toFixed(1), height: 18, rx: 2 });
        const tip = s("title");
        tip.textContent = `${name}: ${v} ${{ q: "queued", s: "scheduled", a: "active" }[cls]}`;
        r.append(tip);
        nodes.push(r);
        x += bw;
      }
    }
    const p95 = waitP95(q);
    const val = s("text", { x: x + 6, y: y + 14 });
    val.textContent = `${fmt.count(q.queued + q.scheduled + q.active)} · p95 ${fmt.duration(p95)}`;
    nodes.push(val);
  });
  svg.replaceChildren(...nodes);
}

function workersChart() {
  const svg = $("#workers-chart");
  const values = state.workersSeen.map((p) => p.n);
  svg.style.display = values.length < 2 ? "none" : "";
  if (values.length < 2) return;
  const [w, hgt] = size(svg);
  const max = fmt.niceMax(Math.max(...values, 1));
  const line = s("polyline", { class: "line", points: fmt.linePoints(values, w, hgt - 4, max) });
  const label = s("text", { x: 2, y: 10 });
  label.textContent = `workers, last ${fmt.duration(Date.now() - state.workersSeen[0].t)} (max ${max})`;
  svg.replaceChildren(line, label);
}

// -- panels -------------------------------------------------------------------------------------
const win = (q, m) => (q.windows && (q.windows[m] || q.windows[String(m)])) || null;
function waitP95(q) { const w = win(q, 5); return w && w.wait_ms ? w.wait_ms.p95 : null; }
function runP95(q) { const w = win(q, 5); return w && w.run_ms ? w.run_ms.p95 : null; }

function renderKpis(m) {
  const totals = (m.overall && m.overall.totals) || {};
  $("#jobs-processed").textContent = fmt.count(fmt.processed(totals));
  $("#jobs-processed").dataset.value = String(fmt.processed(totals) ?? 0);
  $("#jobs-failed").textContent = fmt.count(totals.failed ?? 0);
  const one = m.overall ? win(m.overall, 1) : null;
  $("#jobs-rate").textContent = fmt.rate(one ? one.throughput_per_s : 0);
  $("#jobs-dead").textContent = fmt.count(m.dead ?? 0);
}

function renderQueues(m) {
  const queues = m.queues || {};
  queueChart(queues);
  const rows = Object.entries(queues).map(([name, q]) => h("tr", { "data-queue": name },
    h("td", {}, name, " ", q.paused ? tag("paused") : null),
    h("td", { class: "num" }, fmt.count(q.queued)),
    h("td", { class: "num" }, fmt.count(q.scheduled)),
    h("td", { class: "num" }, fmt.count(q.active)),
    h("td", { class: "num" }, fmt.duration(waitP95(q))),
    h("td", { class: "num" }, fmt.duration(runP95(q))),
    h("td", {}, q.paused
      ? h("button", { type: "button", "data-action": "resume", onclick: () => write("POST", `queues/${encodeURIComponent(name)}/resume`, () => `queue ${name} resumed`) }, "Resume")
      : h("button", { type: "button", "data-action": "pause", onclick: () => write("POST", `queues/${encodeURIComponent(name)}/pause`, () => `queue ${name} paused`) }, "Pause")),
  ));
  $("#queues tbody").replaceChildren(...rows);
  const select = $("#jobs-queue");
  const names = Object.keys(queues);
  if (names.join() !== [...select.options].map((o) => o.value).join()) {
    select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  }
  if (!state.queue || !names.includes(state.queue)) state.queue = names[0] || null;
  select.value = state.queue || "";
}

function renderMasters(m) {
  const masters = m.masters || [];
  if (!masters.length) {
    $("#masters").replaceChildren(h("p", { class: "muted" }, "No master is running: start one with ", h("code", {}, "task-worker worker"), "."));
    return;
  }
  const now = Date.now();
  $("#masters").replaceChildren(...masters.map((ms) => h("div", { class: "master", "data-master": ms.id },
    h("div", { class: "row" }, h("strong", {}, ms.id),
      h("span", { class: "muted" }, `up ${fmt.duration((ms.uptime_s ?? 0) * 1000)} · ${ms.actual}/${ms.desired} workers · ${ms.busy ?? 0}/${ms.slots ?? 0} slots busy · processed ${fmt.count(ms.processed)}`),
      ms.quiet ? tag("quiet", "warning") : null, ms.draining ? tag("draining", "warning") : null,
      ms.stopping ? tag("stopping", "warning") : null, ms.redis_down ? tag("redis down", "bad") : null,
      ms.spawn_halted ? tag("spawn halted", "bad") : null),
    h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ...["worker", "pid", "state", "busy", "RSS", "USS", "done", "running now"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...(ms.workers || []).map((wk) => h("tr", {},
        h("td", {}, `#${wk.index}`), h("td", {}, String(wk.pid)), h("td", {}, tag(wk.state, wk.state === "running" ? "running" : "warning")),
        h("td", { class: "num" }, `${wk.busy}/${wk.slots}`), h("td", { class: "num" }, fmt.bytes(wk.rss)),
        h("td", { class: "num" }, fmt.bytes(wk.uss)), h("td", { class: "num" }, fmt.count(wk.processed)),
        h("td", {}, (wk.jobs || []).slice(0, 3).map((j) => `${j.task} (${fmt.duration((j.running_s || 0) * 1000)})`).join(", ") || "—"),
      ))))),
  )));
  state.now = now;
}

function kv(obj) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || v === undefined || typeof v === "object") continue;
    dl.append(h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, String(v)));
  }
  return dl;
}

function decisionText(d) {
  if (typeof d !== "object" || d === null) return String(d);
  const at = d.at_ms ?? d.at ?? null;
  const when = at ? `${fmt.ago(at > 1e12 ? at : at * 1000, Date.now())}: ` : "";
  const change = d.workers !== undefined && d.target !== undefined ? ` ${d.workers} → ${d.target} workers` : "";
  const why = Array.isArray(d.reasons) ? d.reasons.join("; ") : (d.reason ?? "");
  return `${when}${d.action ?? "?"}${change}${why ? ` (${why})` : ""}${d.outcome && d.outcome !== "applied" ? ` [${d.outcome}]` : ""}`;
}

function flat(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) if (v !== null && typeof v !== "object") out[k] = typeof v === "number" ? +v.toFixed(3) : v;
  return out;
}

function renderAutoscaler(m) {
  const masters = m.masters || [];
  const n = masters.reduce((a, ms) => a + (ms.actual || 0), 0);
  state.workersSeen.push({ t: Date.now(), n });
  if (state.workersSeen.length > 900) state.workersSeen.shift();
  const info = m.autoscaler || {};
  const box = [h("p", {}, h("strong", {}, fmt.count(n)), ` worker(s) on ${masters.length} master(s) · autoscaler `,
    info.enabled ? tag("on", "ok") : tag("off", "warning"))];
  for (const [id, ms] of Object.entries(info.masters || {})) {
    const st = ms.state || {};
    box.push(h("div", { class: "master", "data-autoscaler": id }, h("div", { class: "row" }, h("strong", {}, id),
      h("span", { class: "muted" }, `${ms.workers} running, ${ms.desired} wanted${st.enabled ? ` (${st.min_workers}–${st.max_workers})` : ""}`),
      st.enabled === false ? tag("fixed", "warning") : null,
      st.pinned ? tag(`pinned at ${st.pinned}${st.pinned_by ? ` by ${st.pinned_by}` : ""}`, "warning") : null)));
    if (st.thresholds) box.push(h("details", {}, h("summary", {}, "thresholds"), kv(flat(st.thresholds))));
    const decisions = st.history || [];
    if (decisions.length) {
      box.push(h("ul", { class: "alerts decisions" }, ...decisions.slice(-6).reverse().map((d) => h("li", {}, decisionText(d)))));
    }
  }
  $("#autoscaler").replaceChildren(...box);
  workersChart();
}

function renderSla(sla) {
  const targets = (sla && Array.isArray(sla.targets)) ? sla.targets : [];
  if (!targets.length) {
    $("#sla").replaceChildren(h("p", { class: "muted" }, sla ? "No SLA target set ([autoscaler.target_sla])." : "SLA metrics are off ([metrics] collect_sla_metrics)."));
    return;
  }
  const head = h("p", {}, "Over the last ", String(sla.window_minutes ?? "?"), " min: ",
    tag(sla.status || "no_data", sla.status === "ok" ? "ok" : sla.status === "violated" ? "bad" : "warning"));
  $("#sla").replaceChildren(head, ...targets.map((t) => {
    const pct = t.percent_of_target;
    const over = t.status === "violated";
    return h("div", { class: "sla-row", "data-sla": t.name },
      h("span", {}, t.name.replaceAll("_", " ")),
      h("span", {}, `${t.value ?? "—"} / ${t.target} `, tag(t.status || "no_data", over ? "bad" : t.status === "ok" ? "ok" : "warning"),
        t.violations ? h("span", { class: "muted" }, ` ${t.violations} violation(s)`) : null),
      h("div", { class: `bar${over ? " over" : ""}` }, h("span", { style: `width:${pct == null ? 0 : Math.min(100, Math.max(2, +pct))}%` })));
  }));
}

function renderAlerts(alerts) {
  const list = Array.isArray(alerts) ? alerts : [];
  const now = Date.now();
  $("#alerts").replaceChildren(...(list.length
    ? list.map((a) => h("li", { "data-alert": a.key || a.name || "" },
      tag(a.severity || "warning", a.severity || "warning"), " ", h("strong", {}, a.name || a.key || "alert"), " ",
      a.message || "", a.value != null ? h("span", { class: "muted" }, ` (value ${a.value}${a.threshold != null ? `, threshold ${a.threshold}` : ""})`) : null,
      a.since_ms ? h("span", { class: "muted" }, ` since ${fmt.ago(a.since_ms, now)}`) : null))
    : [h("li", { class: "muted" }, "No active alert.")]));
}

function pager(el, offset, limit, total, go) {
  const p = fmt.page(offset, limit, total);
  el.replaceChildren(
    h("button", { type: "button", disabled: p.prev === null, onclick: () => go(p.prev) }, "‹ newer"),
    h("span", {}, total ? `${p.from}–${p.to} of ${fmt.count(total)}` : "none"),
    h("button", { type: "button", disabled: p.next === null, onclick: () => go(p.next) }, "older ›"));
}

function jobLink(id) {
  return h("a", { href: "#", onclick: (e) => { e.preventDefault(); lookup(id); } }, id);
}

async function renderJobs() {
  const st = state.jobState;
  if (!state.queue && st !== "dead") { $("#jobs tbody").replaceChildren(); return; }
  const where = st === "dead" && !state.queue ? "dead?" : `queues/${encodeURIComponent(state.queue)}/jobs?state=${st}&`;
  const data = await api(`${where}offset=${state.jobsOffset}&limit=${PAGE}`);
  $("#jobs-when").textContent = { queued: "—", scheduled: "due", active: "lease until", dead: "died" }[st];
  const now = Date.now();
  $("#jobs tbody").replaceChildren(...data.jobs.map((j) => h("tr", { "data-job": j.id },
    h("td", { class: "id" }, jobLink(j.id)), h("td", {}, j.task || "?"), h("td", {}, tag(j.state || st)),
    h("td", { class: "num" }, String(j.attempts)), h("td", {}, fmt.ago(j.enqueued_ms, now)),
    h("td", {}, j.score_ms ? fmt.ago(j.score_ms, now) : "—"))));
  pager($("#jobs-pager"), state.jobsOffset, PAGE, data.total, (o) => { state.jobsOffset = o; renderJobs().catch(showError); });
}

async function renderDead() {
  const data = await api(`dead?offset=${state.deadOffset}&limit=${DEAD_PAGE}`);
  $("#dead-total").textContent = `${fmt.count(data.total)} job(s)`;
  $("#retry-all").disabled = data.total === 0;
  const now = Date.now();
  const open = new Set([...document.querySelectorAll("#dead details[open]")].map((d) => d.dataset.for));
  $("#dead").replaceChildren(...(data.jobs.length ? data.jobs.map((j) => h("div", { class: "dead-job", "data-dead-id": j.id },
    h("div", { class: "row" }, h("code", {}, jobLink(j.id)), h("span", {}, `${j.task} on ${j.queue}`),
      h("span", { class: "muted" }, `${j.attempts} attempt(s), ${j.failures} failure(s)${j.stalls ? `, ${j.stalls} stall(s)` : ""} · died ${fmt.ago(j.score_ms, now)}`)),
    h("div", { class: "err" }, j.error || "(no error recorded)"),
    j.traceback ? h("details", { "data-for": j.id, open: open.has(j.id) }, h("summary", {}, "traceback"), h("pre", {}, j.traceback)) : null,
    h("div", { class: "row" },
      h("button", { type: "button", "data-action": "retry", onclick: () => write("POST", `dead/${encodeURIComponent(j.id)}/retry`, () => `job ${j.id} queued again`) }, "Retry"),
      h("button", {
        type: "button", class: "danger", "data-action": "delete",
        onclick: (e) => {
          if (state.armedDelete !== j.id) { state.armedDelete = j.id; e.target.textContent = "Confirm delete"; return; }
          state.armedDelete = null;
          write("DELETE", `dead/${encodeURIComponent(j.id)}`, () => `job ${j.id} deleted`);
        },
      }, state.armedDelete === j.id ? "Confirm delete" : "Delete")))) : [h("p", { class: "muted" }, "The dead letter is empty.")]));
  pager($("#dead-pager"), state.deadOffset, DEAD_PAGE, data.total, (o) => { state.deadOffset = o; renderDead().catch(showError); });
}

async function lookup(id) {
  $("#lookup-id").value = id;
  const out = $("#lookup-result");
  try {
    const j = await api(`jobs/${encodeURIComponent(id.trim())}`);
    const shown = {};
    for (const [k, v] of Object.entries(j)) {
      if (k === "traceback" || k === "history" || v === null || typeof v === "object") continue;
      if (k.endsWith("_ms")) shown[k.slice(0, -3)] = `${new Date(v).toLocaleString()} (${fmt.ago(v, Date.now())})`;
      else shown[k] = v;
    }
    out.replaceChildren(h("div", { class: "job", "data-job": j.id || id }, kv(shown),
      j.traceback ? h("details", {}, h("summary", {}, "traceback"), h("pre", {}, j.traceback)) : null));
  } catch (err) {
    out.replaceChildren(h("p", { class: "err" }, err.status === 404 ? `No job ${id} (never enqueued, or its record expired).` : err.message));
  }
  out.scrollIntoView({ block: "nearest" });
}

// -- refresh loop -------------------------------------------------------------------------------
function showError(err) {
  const box = $("#outage");
  if (err.status === 404 && err.path.startsWith("metrics")) {
    box.textContent = `This server does not serve ${err.path.split("?")[0]}: the metrics routes are off. `
      + "Turn on [web] enable_metrics and [metrics] enabled to use the dashboard.";
    box.hidden = false;
    $("#live").className = "pill down";
    $("#live").textContent = "no metrics";
    return;
  }
  const redis = err.status === 503 || /redis/i.test(err.message);
  const why = err.message.replace(/^redis unreachable:\s*/i, "");
  box.textContent = `${redis ? "Redis is unreachable" : "The API is unreachable"}: ${why}. Showing the last data; retrying every ${REFRESH_MS / 1000} s.`;
  box.hidden = false;
  $("#live").className = "pill down";
  $("#live").textContent = "down";
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [m, timeline] = await Promise.all([api("metrics"), api("metrics/timeline?minutes=60")]);
    renderKpis(m);
    renderQueues(m);
    throughputChart(timeline);
    renderMasters(m);
    renderAutoscaler(m);
    renderSla(m.sla);
    renderAlerts(m.alerts);
    await Promise.all([renderJobs(), renderDead()]);
    $("#outage").hidden = true;
    showLive();
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "1";
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
  }
}

// A refresh that was in flight when the tab was hidden must not claim to be live.
function showLive() {
  $("#live").className = document.hidden ? "pill paused" : "pill live";
  $("#live").textContent = document.hidden ? "paused (tab hidden)" : "live";
}

function schedule() {
  clearTimeout(state.timer);
  if (document.hidden) {
    showLive();
    return;
  }
  state.timer = setTimeout(async () => { await refresh(); schedule(); }, REFRESH_MS);
}

function setup() {
  const saved = localStorage.getItem("tq-theme");
  if (saved) document.documentElement.dataset.theme = saved;
  $("#theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    document.documentElement.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("tq-theme", document.documentElement.dataset.theme);
  });
  $("#jobs-queue").addEventListener("change", (e) => { state.queue = e.target.value; state.jobsOffset = 0; renderJobs().catch(showError); });
  for (const b of document.querySelectorAll("#jobs-state button")) {
    b.addEventListener("click", () => {
      state.jobState = b.dataset.state;
      state.jobsOffset = 0;
      for (const o of document.querySelectorAll("#jobs-state button")) o.setAttribute("aria-selected", String(o === b));
      renderJobs().catch(showError);
    });
  }
  $("#retry-all").addEventListener("click", () => write("POST", "dead/retry-all", (r) => `${fmt.count(r && (r.retried ?? r.count))} dead job(s) queued again`));
  $("#lookup").addEventListener("submit", (e) => { e.preventDefault(); lookup($("#lookup-id").value); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); schedule(); });
  refresh().then(schedule);
}

setup();
