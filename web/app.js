/*
 * Outpost console: one page over the hub's HTTP API (/v1). It logs in with an
 * API token (the hub answers with an HttpOnly session cookie), then shows the
 * fleet, the jobs, the power over the day, route plans and the audit head, kept
 * live by the hub's server-sent events. Every value from the hub is put in the
 * page as text or as SVG numbers, never as markup.
 */
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const JOB_STATES = ["queued", "placed", "running", "succeeded", "failed", "cancelled"];
const JOB_LIMIT = 40;

const ui = {
  sites: new Map(), // id -> the site as GET /v1/sites has it, updated by site events
  jobs: new Map(), // id -> summary as GET /v1/jobs has it, updated by job events
  rows: new Map(), // id -> its row in the jobs table
  fleetShape: "", // the classes and site ids the fleet tables were built for
  powerStepS: 0, // the hub's power sample step
  powerTimer: 0,
  counts: {},
  detailId: 0,
  events: null,
  timers: [],
  pending: new Map(), // name -> a refresh waiting to run (soon)
};

/* ---------- small helpers ---------- */

function $(id) {
  return document.getElementById(id);
}

/* An element with attributes and children (strings become text nodes, never markup). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function watts(w) {
  return typeof w === "number" && isFinite(w) ? `${Math.round(w)} W` : "–";
}

function clockTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function untilText(ms) {
  if (!ms) return "stays";
  const minutes = Math.round((ms - Date.now()) / 60000);
  if (minutes <= 0) return "leaving now";
  return minutes < 90 ? `in ${minutes} min` : `in ${(minutes / 60).toFixed(1)} h`;
}

function setStatus(text) {
  $("status").textContent = text;
}

/*
 * Runs fn at most once per delay, and once more after the last call of a burst
 * (a burst of events -> a fetch now and then one that sees the end of it).
 */
function soon(name, delayMs, fn) {
  const pending = ui.pending.get(name);
  if (pending) {
    pending.again = true;
    return;
  }
  const entry = { again: false };
  ui.pending.set(name, entry);
  setTimeout(() => {
    ui.pending.delete(name);
    fn();
    if (entry.again) soon(name, delayMs, fn);
  }, delayMs);
}

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/* A JSON call; state-changing ones carry the CSRF header the session cookie needs. */
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Outpost-CSRF"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (res.status === 401 && path !== "/v1/login") {
    showLogin("Your session ended; log in again.");
    throw new ApiError(401, "not logged in", "unauthorized");
  }
  if (!res.ok) {
    const msg = data && data.error ? data.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg, data && data.code);
  }
  return data;
}

/* ---------- login ---------- */

/*
 * Whether this browser logged in before: the session cookie is HttpOnly, so the
 * page keeps its own hint and does not probe the API (a 401) before a first login.
 */
function rememberSession(on) {
  try {
    if (on) localStorage.setItem("outpost-session", "1");
    else localStorage.removeItem("outpost-session");
  } catch (e) {
    /* no storage: the page asks for a token each time */
  }
}

function hadSession() {
  try {
    return localStorage.getItem("outpost-session") === "1";
  } catch (e) {
    return false;
  }
}

function showLogin(message) {
  rememberSession(false);
  stopLive();
  $("console").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-token").focus();
}

async function login(event) {
  event.preventDefault();
  const token = $("login-token").value.trim();
  $("login-error").textContent = "";
  try {
    await api("POST", "/v1/login", { token });
  } catch (e) {
    $("login-error").textContent = e.status === 401 ? "That token is not valid." : e.message;
    return;
  }
  $("login-token").value = "";
  rememberSession(true);
  start();
}

async function logout() {
  try {
    await api("POST", "/v1/logout", {});
  } catch (e) {
    /* the cookie is gone either way */
  }
  showLogin("Logged out.");
}

/* ---------- the fleet ---------- */

function siteDraw(s) {
  if (typeof s.draw_watts === "number") return s.draw_watts;
  if (typeof s.draw_w === "number") return s.draw_w;
  return s.power_budget_watts - s.headroom_watts;
}

function forecastNextHour(s) {
  const f = s.power && s.power.forecast_watts;
  /* the third horizon is one hour (15 min, 30 min, 1 h, ...) */
  return f && f.length > 2 ? watts(f[2]) : "flat";
}

function trustText(s) {
  const t = s.trust || {};
  if (t.trusted_class) return "trusted class";
  return `${t.valid_in_a_row || 0}/${t.needed || 0} checked${t.mismatches ? `, ${t.mismatches} mismatches` : ""}`;
}

function drawMeter(s) {
  const budget = s.power_budget_watts || 0;
  const share = budget > 0 ? Math.max(0, Math.min(1, siteDraw(s) / budget)) : 0;
  const fill = el("span");
  fill.style.width = `${Math.round(share * 100)}%`;
  return el("span", { class: "meter", "aria-hidden": "true" }, fill);
}

function siteRow(s) {
  const flags = [];
  if (s.quarantined) flags.push(`quarantined: ${s.quarantined}`);
  if (s.held) flags.push(`held: ${s.held}`);
  if (s.store_failing) flags.push("store failing");
  return el("tr", { "data-site": s.id },
    el("th", { scope: "row" }, s.id),
    el("td", { class: `state state-${s.status}` }, s.status),
    el("td", { class: "num" }, watts(s.power_budget_watts)),
    el("td", { class: "num" }, watts(siteDraw(s)), drawMeter(s)),
    el("td", { class: "num" }, watts(s.headroom_watts)),
    el("td", { class: "num" }, forecastNextHour(s)),
    el("td", {}, untilText(s.power && s.power.stay_until_ms)),
    el("td", {}, `${s.jobs || 0}`),
    el("td", {}, trustText(s)),
    el("td", { class: flags.length ? "flag" : "" }, flags.join("; ") || "–"),
    el("td", { class: s.protections_off ? "flag" : "" }, s.protections_off || "none"));
}

function classCaption(cls, sites) {
  const alive = sites.filter((s) => s.status === "alive").length;
  const offered = sites.reduce((n, s) => n + (s.status === "alive" ? s.headroom_watts : 0), 0);
  return el("caption", {}, el("b", {}, cls), `${alive} of ${sites.length} alive, ${watts(offered)} spare now`);
}

/* Swaps in the cells (and caption) whose content changed: no layout jump on every heartbeat. */
function patch(oldNode, newNode) {
  if (oldNode.outerHTML !== newNode.outerHTML) oldNode.replaceWith(newNode);
}

/*
 * One table per class. Rebuilt only when sites join or classes change;
 * otherwise each row's changed cells are replaced where they stand.
 */
function renderFleet() {
  const byClass = new Map();
  for (const s of ui.sites.values()) {
    if (!byClass.has(s.class)) byClass.set(s.class, []);
    byClass.get(s.class).push(s);
  }
  const classes = [...byClass.keys()].sort();
  for (const cls of classes) byClass.get(cls).sort((a, b) => a.id.localeCompare(b.id));
  const shape = classes.map((c) => `${c}:${byClass.get(c).map((s) => s.id).join(",")}`).join(";");
  const box = $("fleet-classes");
  if (shape === ui.fleetShape) {
    for (const cls of classes) {
      const table = box.querySelector(`table[data-class="${CSS.escape(cls)}"]`);
      patch(table.caption, classCaption(cls, byClass.get(cls)));
      byClass.get(cls).forEach((s, i) => {
        const fresh = [...siteRow(s).cells]; /* copied: a cell swapped in leaves its new row */
        [...table.tBodies[0].rows[i].cells].forEach((cell, k) => patch(cell, fresh[k]));
      });
    }
    return;
  }
  ui.fleetShape = shape;
  box.replaceChildren();
  if (byClass.size === 0) box.append(el("p", { class: "hint" }, "No sites have joined yet."));
  for (const cls of classes) {
    const head = el("tr", {}, ...["Site", "State", "Envelope", "Draw", "Headroom", "Next hour",
      "Departs", "Jobs", "Trust", "Quarantine", "Protections off"].map((h) => el("th", { scope: "col" }, h)));
    const table = el("table", { class: "grid", "data-class": cls },
      classCaption(cls, byClass.get(cls)),
      el("thead", {}, head),
      el("tbody", {}, ...byClass.get(cls).map(siteRow)));
    box.append(el("div", { class: "table-scroll" }, table));
  }
}

async function loadSites() {
  const data = await api("GET", "/v1/sites");
  ui.sites = new Map((data.sites || []).map((s) => [s.id, s]));
  renderFleet();
}

/* A site event carries its state and power now; the rest waits for the next full fetch. */
function onSiteEvent(ev) {
  const s = ui.sites.get(ev.id);
  if (!s) {
    soon("sites", 300, () => loadSites().catch(report));
    return;
  }
  if (ev.state) s.status = ev.state;
  if (typeof ev.headroom_w === "number") s.headroom_watts = ev.headroom_w;
  if (typeof ev.draw_w === "number") s.draw_watts = ev.draw_w;
  soon("fleet-render", 250, renderFleet);
  soon("sites", 10000, () => loadSites().catch(report));
}

/* ---------- jobs ---------- */

function renderCounts() {
  const list = $("job-counts");
  list.replaceChildren();
  for (const st of JOB_STATES) {
    list.append(el("li", { "data-state": st }, el("b", { class: `state-${st}` }, `${ui.counts[st] || 0}`), st));
  }
}

/*
 * A job's row, made once and updated in place: rows are not rebuilt on every
 * event, so a keyboard user's focus on a job's button survives live updates.
 */
function jobRow(j) {
  let tr = ui.rows.get(j.id);
  if (!tr) {
    const open = el("button", { type: "button", class: "link", "data-job": j.id,
      "aria-label": `Job ${j.id}: open its explanation` }, `${j.id}`);
    open.addEventListener("click", () => openJob(j.id));
    tr = el("tr", { "data-job": j.id }, el("td", {}, open), ...[1, 2, 3, 4, 5, 6].map(() => el("td")));
    ui.rows.set(j.id, tr);
  }
  tr.dataset.state = j.state;
  const cells = tr.cells;
  cells[1].textContent = j.name || "–";
  cells[2].textContent = j.kind || "";
  cells[3].textContent = j.state;
  cells[3].className = `state state-${j.state}`;
  cells[4].textContent = j.site || "–";
  cells[5].textContent = clockTime(j.submitted_at);
  cells[6].textContent = j.reason || "";
  return tr;
}

/* The newest jobs in order, moving only the rows that are out of place. */
function renderJobs() {
  const rows = [...ui.jobs.values()].sort((a, b) => b.id - a.id).slice(0, JOB_LIMIT).map(jobRow);
  const body = $("job-table").tBodies[0];
  rows.forEach((tr, i) => {
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  while (body.rows.length > rows.length) body.lastElementChild.remove();
  const shown = new Set(rows);
  for (const [id, tr] of ui.rows) if (!shown.has(tr)) ui.rows.delete(id);
  renderCounts();
}

async function loadJobs() {
  const data = await api("GET", `/v1/jobs?limit=${JOB_LIMIT}`);
  ui.jobs = new Map((data.jobs || []).map((j) => [j.id, j]));
  ui.counts = data.counts || {};
  renderJobs();
}

function onJobEvent(ev) {
  const j = ui.jobs.get(ev.id) || { id: ev.id, name: "", submitted_at: Date.now() };
  if (j.state !== ev.state) {
    /* the counts follow at once; the next full fetch corrects them */
    if (j.state && ui.counts[j.state] > 0) ui.counts[j.state] -= 1;
    ui.counts[ev.state] = (ui.counts[ev.state] || 0) + 1;
  }
  j.state = ev.state;
  if (ev.kind) j.kind = ev.kind;
  if (ev.site) j.site = ev.site;
  ui.jobs.set(ev.id, j);
  soon("jobs-render", 100, renderJobs);
  soon("jobs", 1000, () => loadJobs().catch(report));
  if (ev.id === ui.detailId) soon("detail", 300, () => loadDetail(ui.detailId).catch(report));
}

/* ---------- one job: explanation, receipt, history, route map ---------- */

function openJob(id) {
  ui.detailId = id;
  $("job-detail").hidden = false;
  loadDetail(id).then(() => $("job-detail").focus()).catch(report);
}

function closeJob() {
  ui.detailId = 0;
  $("job-detail").hidden = true;
}

function receiptList(r) {
  const rc = r.receipt || {};
  const items = [
    ["Site", r.site],
    ["Exit code", `${r.exit_code}`],
    ["CPU", `${(r.cpu_seconds || 0).toFixed(2)} s`],
    ["Wall", `${((r.wall_ms || 0) / 1000).toFixed(2)} s`],
    ["Energy", `${(rc.joules ?? r.energy_joules ?? 0).toFixed(1)} J`],
  ];
  if (typeof rc.spare_share === "number") items.push(["On spare power", `${Math.round(rc.spare_share * 100)} %`]);
  if (typeof rc.cost === "number") items.push(["Cost", rc.cost.toPrecision(3)]);
  if (typeof rc.carbon_g === "number") items.push(["Carbon", `${rc.carbon_g.toFixed(2)} g`]);
  return el("dl", { class: "receipt", "aria-label": `Energy receipt, attempt ${r.attempt}` },
    ...items.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

async function loadDetail(id) {
  const data = await api("GET", `/v1/jobs/${id}`);
  if (id !== ui.detailId) return;
  const j = data.job;
  $("detail-title").textContent = `Job ${j.id}${j.name ? ` (${j.name})` : ""}: ${j.kind}, ${j.state}`;
  $("detail-explanation").textContent = j.explanation || j.reason || "Not placed yet.";
  const receipts = (data.results || []).filter((r) => r.applied !== false);
  $("detail-receipt").replaceChildren(...(receipts.length
    ? [el("h3", {}, "Energy receipt"), ...receipts.map(receiptList)] : []));
  $("detail-events").replaceChildren(...(data.events || []).map((e) =>
    el("li", {}, el("time", {}, clockTime(e.ts)), `${e.event}${e.site ? ` on ${e.site}` : ""}`,
      e.detail ? `: ${e.detail}` : "")));
  $("detail-map").replaceChildren();
  if (j.kind === "route" && j.state === "succeeded") {
    const res = await api("GET", `/v1/jobs/${id}/result`);
    if (id === ui.detailId) $("detail-map").replaceChildren(...routeMap(res.route_map));
  }
}

/* The solution's routes over the instance's coordinates (the hub's route_map). */
function routeMap(m) {
  if (!m || !m.points || m.points.length === 0) {
    return [el("p", { class: "hint" }, "No map: the instance has no coordinates.")];
  }
  const xs = m.points.map((p) => p[0]);
  const ys = m.points.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const size = 600, pad = 20;
  const scale = (size - 2 * pad) / Math.max(maxX - minX, maxY - minY, 1e-9);
  const px = (p) => [pad + (p[0] - minX) * scale, size - pad - (p[1] - minY) * scale];
  const svg = svgEl("svg", { class: "map", viewBox: `0 0 ${size} ${size}`, role: "img",
    "aria-labelledby": "map-title" });
  svg.append(svgEl("title", { id: "map-title" },
    `Route plan: ${m.routes.length} routes over ${m.points.length - 1} stops, cost ${Number(m.cost).toFixed(1)}`));
  svg.append(svgEl("rect", { class: "map-bg", width: size, height: size }));
  const legend = el("ul", { class: "legend", "aria-label": "Routes" });
  m.routes.forEach((r, i) => {
    const colour = `hsl(${Math.round((i * 137.5) % 360)}, 80%, 62%)`;
    const pts = [0, ...r.nodes, 0].map((n) => px(m.points[n]).map((v) => v.toFixed(1)).join(","));
    svg.append(svgEl("polyline", { class: "route", stroke: colour, points: pts.join(" ") }));
    const swatch = svgEl("svg", { width: 24, height: 8, "aria-hidden": "true" });
    swatch.append(svgEl("rect", { width: 24, height: 8, fill: colour }));
    legend.append(el("li", {}, swatch,
      ` ${r.vehicle || "vehicle"}: ${r.nodes.length} stops, ${Number(r.distance || 0).toFixed(1)}`));
  });
  m.points.forEach((p, n) => {
    const [x, y] = px(p);
    if (n === 0) svg.append(svgEl("rect", { class: "depot", x: x - 6, y: y - 6, width: 12, height: 12 }));
    else svg.append(svgEl("circle", { class: "stop", cx: x.toFixed(1), cy: y.toFixed(1), r: 3.5 }));
  });
  return [el("h3", {}, "Route plan"), svg, legend];
}

/* ---------- power over the day ---------- */

function powerChart(cls, series, stepS) {
  const W = 520, H = 220, L = 56, R = 10, T = 14, B = 30;
  const t = series.t || [];
  const offered = series.offered_w || [];
  const used = series.used_w || [];
  const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${cls}: spare power offered and used over the last ${Math.round((t.length * stepS) / 3600)} h` });
  if (t.length < 2) {
    svg.append(svgEl("text", { x: L, y: H / 2 }, "collecting samples…"));
    return svg;
  }
  const t0 = t[0], t1 = t[t.length - 1];
  const top = Math.max(1, ...offered, ...used) * 1.1;
  const x = (v) => L + ((v - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const line = (vals) => vals.map((v, i) => `${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const area = (vals) => `${x(t0).toFixed(1)},${y(0)} ${line(vals)} ${x(t1).toFixed(1)},${y(0)}`;
  svg.append(svgEl("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }));
  svg.append(svgEl("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }));
  for (const frac of [0, 0.5, 1]) {
    const v = (top / 1.1) * frac;
    svg.append(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, `${Math.round(v)} W`));
  }
  for (const frac of [0, 0.5, 1]) {
    const tv = t0 + (t1 - t0) * frac;
    svg.append(svgEl("text", { x: x(tv), y: H - 8, "text-anchor": frac === 0 ? "start" : frac === 1 ? "end" : "middle" },
      new Date(tv * 1000).toLocaleTimeString([], t1 - t0 < 600
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" })));
  }
  svg.append(svgEl("polygon", { class: "offered-area", points: area(offered) }));
  svg.append(svgEl("polygon", { class: "used-area", points: area(used) }));
  svg.append(svgEl("polyline", { class: "offered", points: line(offered) }));
  svg.append(svgEl("polyline", { class: "used", points: line(used) }));
  return svg;
}

/* The energy of samples of watts taken every stepS seconds, in Wh or kWh. */
function energyText(vals, stepS) {
  const wh = (vals.reduce((n, w) => n + w, 0) * stepS) / 3600;
  return wh < 1000 ? `${wh.toFixed(1)} Wh` : `${(wh / 1000).toFixed(2)} kWh`;
}

async function loadPower() {
  const data = await api("GET", "/v1/power?hours=24");
  ui.powerStepS = data.step_s || 300;
  const box = $("power-charts");
  /* classes with no site never offered anything: no chart for them */
  const some = (vals) => (vals || []).some((w) => w > 0);
  const classes = Object.keys(data.classes || {}).sort()
    .filter((c) => some(data.classes[c].offered_w) || some(data.classes[c].used_w));
  box.replaceChildren();
  box.className = "charts";
  if (classes.length === 0) box.append(el("p", { class: "hint" }, "No samples yet."));
  for (const cls of classes) {
    const s = data.classes[cls];
    const offered = energyText(s.offered_w || [], data.step_s), used = energyText(s.used_w || [], data.step_s);
    box.append(el("figure", { "data-class": cls },
      powerChart(cls, s, data.step_s),
      el("figcaption", {}, el("ul", { class: "legend" },
        el("li", {}, el("strong", {}, cls)),
        el("li", {}, el("span", { class: "swatch swatch-offered" }), `offered ${offered}`),
        el("li", {}, el("span", { class: "swatch swatch-used" }), `used ${used}`)))));
  }
}

/* ---------- audit head and policy ---------- */

async function loadHead() {
  const [head, pol] = await Promise.all([api("GET", "/v1/audit/head"), api("GET", "/v1/policy")]);
  const h = head.head || {};
  $("audit-head").textContent = `${h.size || 0} entries, root ${(h.root || "").slice(0, 12)}…`;
  $("audit-head").title = h.root || "";
  $("policy-version").textContent = pol.version ? `v${pol.version} (${(pol.sha256 || "").slice(0, 8)})` : "none";
}

/* ---------- submitting ---------- */

/* SHA-256 of bytes as hex: the browser's when it has one (secure contexts), else ours. */
async function sha256Hex(bytes) {
  if (window.crypto && crypto.subtle) {
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return sha256Fallback(bytes);
}

/* FIPS 180-4 SHA-256, for pages served over plain HTTP to another host (no crypto.subtle). */
function sha256Fallback(bytes) {
  const K = [];
  const isPrime = (n) => { for (let d = 2; d * d <= n; d++) if (n % d === 0) return false; return true; };
  for (let n = 2; K.length < 64; n++) if (isPrime(n)) K.push((Math.cbrt(n) % 1) * 2 ** 32 | 0);
  const Hs = [];
  for (let n = 2; Hs.length < 8; n++) if (isPrime(n)) Hs.push((Math.sqrt(n) % 1) * 2 ** 32 | 0);
  const len = bytes.length, total = ((len + 9 + 63) >> 6) << 6;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[len] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(len / 2 ** 29));
  dv.setUint32(total - 4, (len * 8) >>> 0);
  const w = new Int32Array(64);
  const rot = (v, n) => (v >>> n) | (v << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getInt32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rot(w[i - 15], 7) ^ rot(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rot(w[i - 2], 17) ^ rot(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, h] = Hs;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      [h, g, f, e, d, c, b, a] = [g, f, e, (d + t1) | 0, c, b, a, (t1 + t2) | 0];
    }
    [a, b, c, d, e, f, g, h].forEach((v, i) => { Hs[i] = (Hs[i] + v) | 0; });
  }
  return Hs.map((v) => (v >>> 0).toString(16).padStart(8, "0")).join("");
}

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/* A plain file name for the job's work dir (no '/', no leading dot). */
function inputName(name) {
  const clean = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "");
  return clean.slice(0, 60) || "instance.json";
}

async function buildSpec(form) {
  const kind = form.elements.kind.value;
  const spec = { kind };
  const name = form.elements.name.value.trim();
  if (name) spec.name = name;
  if (kind === "exec") {
    const cmd = form.elements.command.value.trim();
    if (!cmd) throw new Error("A command is needed.");
    spec.command = ["sh", "-c", cmd];
  } else if (kind === "route") {
    const file = form.elements.instance.files[0];
    if (!file) throw new Error("Choose an instance file.");
    const bytes = new Uint8Array(await file.arrayBuffer());
    spec.inputs = [{ name: inputName(file.name), sha256: await sha256Hex(bytes), data_b64: base64(bytes) }];
    spec.route = { time_limit_s: Number(form.elements.time_limit_s.value) || 5 };
  }
  return spec;
}

async function submitJob(event) {
  event.preventDefault();
  const out = $("submit-result");
  out.className = "";
  try {
    const spec = await buildSpec(event.target);
    const data = await api("POST", "/v1/jobs", spec);
    const ids = data.ids || [];
    out.textContent = `Submitted job ${ids.join(", ")}.`;
    for (const id of ids) onJobEvent({ id, state: "queued", kind: spec.kind });
  } catch (e) {
    out.className = "error";
    out.textContent = `Not submitted: ${e.message}`;
  }
}

function showKindFields() {
  const kind = $("submit-form").elements.kind.value;
  for (const k of ["exec", "route"]) {
    for (const box of document.querySelectorAll(`.kind-${k}`)) box.hidden = kind !== k;
  }
}

/* ---------- live updates ---------- */

function listen(es, name, fn) {
  es.addEventListener(name, (m) => {
    try {
      fn(JSON.parse(m.data));
    } catch (e) {
      report(e);
    }
  });
}

function startLive() {
  stopLive();
  const live = $("live");
  live.dataset.state = "wait";
  live.textContent = "connecting";
  const es = new EventSource("/v1/events");
  ui.events = es;
  es.onopen = () => {
    live.dataset.state = "on";
    live.textContent = "live";
  };
  /*
   * A dropped stream is retried by the browser itself; one the hub refused (a
   * restart ended the session, or it is at its stream limit) is closed for good:
   * try again in a while, through a fetch that shows the login when needed.
   */
  es.onerror = () => {
    live.dataset.state = "wait";
    live.textContent = "reconnecting";
    if (es.readyState !== EventSource.CLOSED) return;
    setTimeout(() => {
      if (ui.events === es) loadSites().then(startLive).catch(report);
    }, 10000);
  };
  listen(es, "job", onJobEvent);
  listen(es, "site", onSiteEvent);
  listen(es, "stats", (st) => {
    if (st.counts) {
      ui.counts = st.counts;
      renderCounts();
    }
  });
  /* a new power sample every step: fetched as often, between 5 s and a minute */
  const powerLoop = () => {
    if (ui.events !== es) return; /* logged out, or a newer loop runs */
    const ms = Math.min(60000, Math.max(5000, (ui.powerStepS || 60) * 1000));
    ui.powerTimer = setTimeout(() => loadPower().catch(report).finally(powerLoop), ms);
  };
  powerLoop();
  ui.timers.push(setInterval(() => loadHead().catch(report), 30000));
  ui.timers.push(setInterval(() => loadSites().catch(report), 30000));
}

function stopLive() {
  if (ui.events) ui.events.close();
  ui.events = null;
  ui.timers.forEach(clearInterval);
  ui.timers = [];
  clearTimeout(ui.powerTimer);
  const live = $("live");
  live.dataset.state = "off";
  live.textContent = "off";
}

function report(e) {
  if (e instanceof ApiError && e.status === 401) return;
  setStatus(`Could not update: ${e.message}`);
}

/* ---------- start ---------- */

async function start() {
  try {
    await loadSites();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showLogin(`The hub did not answer: ${e.message}`);
    return;
  }
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  setStatus("");
  await Promise.all([loadJobs(), loadPower(), loadHead()].map((p) => p.catch(report)));
  startLive();
}

function setLarge(on) {
  document.documentElement.classList.toggle("large", on);
  $("large-toggle").setAttribute("aria-pressed", on ? "true" : "false");
  try {
    localStorage.setItem("outpost-large", on ? "1" : "0");
  } catch (e) {
    /* private mode: the choice lasts this page */
  }
}

document.addEventListener("DOMContentLoaded", () => {
  let large = false;
  try {
    large = localStorage.getItem("outpost-large") === "1" || new URLSearchParams(location.search).has("large");
  } catch (e) {
    large = false;
  }
  setLarge(large);
  $("large-toggle").addEventListener("click", () =>
    setLarge(!document.documentElement.classList.contains("large")));
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("submit-form").addEventListener("submit", submitJob);
  $("submit-form").addEventListener("change", showKindFields);
  $("detail-close").addEventListener("click", closeJob);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.detailId) closeJob();
  });
  showKindFields();
  if (hadSession()) start();
  else showLogin("");
});
