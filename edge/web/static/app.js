"use strict";
// The kiosk page: one event stream (/api/stream) for faces, events and health; the
// picture from /video.mjpg (not in privacy mode); fetches for the day view, photos and
// the model. No external requests: everything comes from this device.
const $ = (id) => document.getElementById(id);
const RECENT_S = 3600;
const page = {labels: [], colours: {}, summaries: [], chart: null, day: null, frame: null, showVideo: true};
const STRINGS = JSON.parse($("strings").textContent);   // this page's language (edge/web/strings.toml)
const MAX_POINTS = 3600;

function t(key, values = {}) {
  const s = STRINGS[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in values ? values[name] : m));
}
const emotion = (lab) => STRINGS[`emotion.${lab}`] ?? lab;
const output = (word) => STRINGS[`output.${word}`] ?? word;
const css = (lab) => EmotionChart.css(page.colours[lab]);
const pct = (p) => `${Math.round(p * 100)}%`;
const clock = (t) => EmotionChart.clock(t, true);

function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "colour") e.style.setProperty("--c", v); else e.setAttribute(k, v);
  }
  if (text) e.textContent = text;
  return e;
}

// --- live view --------------------------------------------------------------------------
function drawFrame(msg) {
  page.frame = msg;
  const canvas = $("overlay");
  const stage = $("stage");
  const W = stage.clientWidth, H = stage.clientHeight;
  if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  if (!msg.w || !msg.h) return;
  const s = Math.min(W / msg.w, H / msg.h);             // object-fit: contain
  const ox = (W - msg.w * s) / 2, oy = (H - msg.h * s) / 2;
  if (!page.showVideo) { ctx.fillStyle = "#20262e"; ctx.fillRect(ox, oy, msg.w * s, msg.h * s); }
  // A classroom: 30-60 small boxes. Labels shrink with the crowd and name only the emotion
  // (no id or score) so they do not cover each other; faces too small to read get a thin
  // grey box and no label.
  const unread = msg.unread || [];
  const crowd = msg.faces.length + unread.length > 8;
  ctx.lineWidth = crowd ? 2 : 3;
  const px = crowd ? 12 : Math.max(14, Math.round(18 * s));
  ctx.font = `600 ${px}px system-ui, "Noto Sans CJK SC", sans-serif`;
  ctx.textBaseline = "middle";
  for (const f of msg.faces) {    // the label on a solid chip of its colour, dark text: readable on any picture
    const [x, y, w, h] = f.box;
    ctx.strokeStyle = css(f.emotion);
    ctx.strokeRect(ox + x * s, oy + y * s, w * s, h * s);
    const text = crowd ? emotion(f.emotion) : `#${f.id} ${emotion(f.emotion)} ${pct(f.score)}`;
    const cw = ctx.measureText(text).width + px * 0.6, ch = px * 1.4;
    const cy = Math.max(oy, oy + y * s - ch);
    ctx.fillStyle = css(f.emotion);
    ctx.fillRect(ox + x * s, cy, cw, ch);
    ctx.fillStyle = "#111418";
    ctx.fillText(text, ox + x * s + px * 0.3, cy + ch / 2);
  }
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#aaa";
  for (const f of unread) {
    const [x, y, w, h] = f.box;
    ctx.strokeRect(ox + x * s, oy + y * s, w * s, h * s);
  }
  const list = $("faces");
  list.dataset.frame = msg.i;
  list.dataset.t = msg.t;
  list.classList.toggle("crowd", crowd);
  list.replaceChildren(...msg.faces.map((f) => el("li", {"data-track": f.id, "data-emotion": f.emotion,
    colour: css(f.emotion)}, `#${f.id} ${emotion(f.emotion)} ${pct(f.score)}`)),
    ...(unread.length ? [el("li", {class: "unread"}, t("page.unread", {n: unread.length}))] : []));
  roomNow(msg);
}

// --- the room now -------------------------------------------------------------------------
function roomNow(msg) {
  const n = msg.faces.length;   // the shares: read faces only
  const seen = n + (msg.unread || []).length;   // the count: every face in view
  $("face-count").textContent = t(seen === 1 ? "common.faces_one" : "common.faces_other", {n: seen});
  const dom = $("dominant");
  dom.textContent = msg.dominant ? emotion(msg.dominant) : "—";
  dom.style.setProperty("--c", msg.dominant ? css(msg.dominant) : "");
  const share = page.labels.map((_, i) => (n ? msg.faces.reduce((a, f) => a + (f.scores[i] || 0), 0) / n : 0));
  $("shares").replaceChildren(...page.labels.map((lab, i) => {
    const row = el("div", {class: "bar", "data-label": lab, colour: css(lab)});
    const track = el("div", {class: "track"});
    const fill = el("div", {class: "fill"});
    fill.style.width = `${(share[i] * 100).toFixed(1)}%`;
    track.append(fill);
    row.append(el("span", {}, emotion(lab)), track, el("span", {class: "pct"}, pct(share[i])));
    return row;
  }));
}

// --- the room over time ---------------------------------------------------------------------
function chartNow() {
  if (!page.chart) return;
  const rows = page.day ? page.day.summaries : page.summaries;
  page.chart.draw(rows, page.day ? EmotionChart.dayWindow(page.day.date) : EmotionChart.lastWindow(rows, RECENT_S));
  const what = page.day ? t("page.chart_day", {date: page.day.date, n: rows.length})
                        : t("page.chart_live", {n: rows.length});
  $("chart-note").textContent = rows.length ? what : `${what} ${t("page.chart_empty")}`;
  $("chart").dataset.points = rows.length;
}

async function showDay(date) {
  const r = await fetch(`/api/history?date=${encodeURIComponent(date)}`);
  const body = await r.json();
  if (!r.ok) { $("chart-note").textContent = body.error; return; }
  page.day = body;
  $("last-hour").classList.remove("on");
  chartNow();
}

function keepLastHour() {
  const newest = page.summaries.length ? EmotionChart.unix(page.summaries.at(-1).ts) : 0;
  page.summaries = page.summaries.filter((s) => newest - EmotionChart.unix(s.ts) <= RECENT_S).slice(-MAX_POINTS);
}

function newChart() {
  if (page.chart) page.chart.destroy();
  page.chart = new EmotionChart($("chart"), page.labels, page.colours, {
    names: Object.fromEntries(page.labels.map((lab) => [lab, emotion(lab)])), facesLabel: t("common.faces_seen"), timeLabel: t("common.time")});
  $("chart").replaceChildren();
}

// --- events from the monitor --------------------------------------------------------------------
function onRecord(rec) {
  if (rec.event === "summary") {
    page.summaries.push(rec);
    keepLastHour();
    if (!page.day) chartNow();
  } else if (rec.event === "model_changed") {
    page.labels = rec.labels;
    newChart();
    chartNow();
    loadModels();
  }
}

function onHealth(h) {
  const src = h.source || {};
  const pill = $("source");
  const raw = src.live ? (src.state || "live") : (src.state === "live" || !src.state ? "playing" : src.state);
  const state = raw === "playing" ? t("page.playing") : (STRINGS[`state.${raw}`] ?? raw);
  pill.textContent = `${src.live ? t("page.camera") : t("page.video_file")}: ${src.name} · ${state}`;
  pill.className = "pill" + (raw === "down" || raw === "reconnecting" ? " down" : "") + (/sample|demo/i.test(src.name || "") ? " demo" : "");
  $("fps").textContent = `${h.fps} fps`;
  const rows = [
    [t("page.k_source"), `${src.name} (${src.live ? t("state.live") : t("page.file")})`],
    [t("page.k_state"), src.down_since ? t("page.since", {state, time: clock(src.down_since)}) : state],
    [t("page.k_fps"), h.fps], [t("page.k_uptime"), `${Math.round(h.uptime_s)} s`], [t("page.k_frames"), h.frames],
    [t("page.k_bad_frames"), h.bad_frames], [t("page.k_dropped"), h.dropped_frames],
    [t("page.k_failures"), h.source_failures], [t("page.k_events"), h.events],
    [t("page.k_viewers"), t("page.viewers", {pages: h.viewers, streams: h.video_viewers})],
    [t("page.k_photos"), t("page.photos", {n: h.photos, refused: h.photos_refused})],
  ];
  for (const [name, out] of Object.entries(h.outputs || {})) {   // each output's own counters
    rows.push([output(name), Object.entries(out).map(([k, v]) => `${output(k)}: ${typeof v === "string" ? output(v) : v}`).join(" · ")]);
  }
  $("health-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {"data-key": k}, String(v))]));
}

function onHello(msg) {
  page.labels = msg.labels;
  page.colours = msg.colours;
  page.showVideo = msg.show_video;
  page.summaries = msg.summaries || [];
  keepLastHour();
  newChart();
  chartNow();
  $("privacy").hidden = msg.show_video;
  const video = $("video");
  if (msg.show_video && !video.src) { video.src = "/video.mjpg"; video.hidden = false; }
  showModel(msg.model);
  if (msg.frame) drawFrame(msg.frame);
}

function connect() {
  const es = new EventSource("/api/stream");
  es.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "frame") drawFrame(msg);
    else if (msg.type === "event") onRecord(msg.record);
    else if (msg.type === "health") onHealth(msg);
    else if (msg.type === "hello") onHello(msg);
  };
  es.onerror = () => { $("source").textContent = t("page.not_answering"); $("source").className = "pill down"; };
}

// --- a photo --------------------------------------------------------------------------------
async function classifyPhoto(file) {
  $("photo-error").textContent = "";
  const r = await fetch("/api/photo", {method: "POST", body: file,
    headers: {"Content-Type": file.type || "application/octet-stream"}});
  const body = await r.json();
  if (!r.ok) { $("photo-error").textContent = body.error; $("photo-result").hidden = true; $("photo-faces").replaceChildren(); return; }
  const img = $("photo-result");
  img.src = body.image;
  img.hidden = false;
  $("photo-faces").replaceChildren(...(body.faces.length ? body.faces.map((f) => f.emotion === null
    ? el("li", {class: "unread"}, t("page.photo_unread", {box: f.box.join(", ")}))
    : el("li", {"data-emotion": f.emotion, colour: css(f.emotion)},
      t("page.photo_face", {emotion: emotion(f.emotion), score: pct(f.scores[f.emotion]), box: f.box.join(", ")}))) : [el("li", {}, t("page.photo_none"))]));
}

// --- the model --------------------------------------------------------------------------------
function showModel(m) {
  if (!m) return;
  const val = m.val || {};
  const rows = [[t("page.k_file"), m.file], [t("page.k_labels"), (m.labels || []).map(emotion).join(", ")],
    [t("page.k_accuracy"), val.int8_accuracy != null ? t("page.accuracy", {pct: `${(val.int8_accuracy * 100).toFixed(1)}%`, n: val.n, against: val.scored_against}) : t("page.not_stated")],
    [t("page.k_trained_on"), m.trained_on || t("page.not_stated")]];
  $("model-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {"data-key": k}, v)]));
}

async function loadModels() {
  const r = await fetch("/api/models");
  const body = await r.json();
  showModel(body.current);
  $("model-select").replaceChildren(...body.models.map((m) => {
    const o = el("option", {value: m.file}, m.file + (m.accuracy != null ? ` (${(m.accuracy * 100).toFixed(1)}%)` : "") + (m.in_use ? ` · ${t("page.model_in_use")}` : ""));
    if (m.in_use) o.selected = true;
    return o;
  }));
}

async function useModel() {
  $("model-error").textContent = $("model-ok").textContent = "";
  const file = $("model-select").value;
  const r = await fetch("/api/models", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({file})});
  const body = await r.json();
  if (r.ok) $("model-ok").textContent = t("page.model_switched", {file});
  else $("model-error").textContent = body.error;
  setTimeout(loadModels, 500);
}

// --- wiring -----------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  connect();
  loadModels();
  $("model-use").addEventListener("click", useModel);
  $("last-hour").addEventListener("click", () => { page.day = null; $("day").value = ""; $("last-hour").classList.add("on"); chartNow(); });
  $("day").addEventListener("change", (ev) => { if (ev.target.value) showDay(ev.target.value); });
  $("photo-file").addEventListener("change", (ev) => { if (ev.target.files[0]) classifyPhoto(ev.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); if (ev.dataTransfer.files[0]) classifyPhoto(ev.dataTransfer.files[0]); });
  window.addEventListener("resize", () => { if (page.frame) drawFrame(page.frame); chartNow(); });
  setInterval(() => { if (!page.day) chartNow(); }, 30000);   // the last hour moves on
});
