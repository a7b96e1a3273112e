"use strict";
// The kiosk page: one event stream (/api/stream) for faces, events and health; the
// picture from /video.mjpg (not in privacy mode); fetches for the day view, photos and
// the model. No external requests: everything comes from this device.
const $ = (id) => document.getElementById(id);
const RECENT_S = 3600;
const page = {labels: [], colours: {}, summaries: [], chart: null, day: null, frame: null, showVideo: true};

const css = (lab) => EmotionChart.css(page.colours[lab]);
const pct = (p) => `${Math.round(p * 100)}%`;
const faceWord = (n) => (n === 1 ? "face" : "faces");
const clock = (t) => new Date(t * 1000).toLocaleTimeString();

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
  const px = crowd ? 12 : Math.max(14, Math.round(18 * s));
  ctx.lineWidth = crowd ? 2 : 3;
  ctx.font = `${px}px system-ui, sans-serif`;
  for (const f of msg.faces) {
    const [x, y, w, h] = f.box;
    ctx.strokeStyle = ctx.fillStyle = css(f.emotion);
    ctx.strokeRect(ox + x * s, oy + y * s, w * s, h * s);
    const text = crowd ? f.emotion : `#${f.id} ${f.emotion} ${pct(f.score)}`;
    const ty = Math.max(oy + px, oy + y * s - 4);
    ctx.fillStyle = "rgba(0,0,0,.6)";
    ctx.fillRect(ox + x * s, ty - px, ctx.measureText(text).width + 6, px + 4);
    ctx.fillStyle = css(f.emotion);
    ctx.fillText(text, ox + x * s + 3, ty);
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
    colour: css(f.emotion)}, `#${f.id} ${f.emotion} ${pct(f.score)}`)),
    ...(unread.length ? [el("li", {class: "unread"}, `${unread.length} too small to read`)] : []));
  roomNow(msg);
}

// --- the room now -------------------------------------------------------------------------
function roomNow(msg) {
  const n = msg.faces.length;   // the shares: read faces only
  const seen = n + (msg.unread || []).length;
  $("face-count").textContent = seen;
  $("face-word").textContent = faceWord(seen);
  const dom = $("dominant");
  dom.textContent = msg.dominant || "—";
  dom.style.setProperty("--c", msg.dominant ? css(msg.dominant) : "");
  const share = page.labels.map((_, i) => (n ? msg.faces.reduce((a, f) => a + (f.scores[i] || 0), 0) / n : 0));
  $("shares").replaceChildren(...page.labels.map((lab, i) => {
    const row = el("div", {class: "bar", "data-label": lab, colour: css(lab)});
    const track = el("div", {class: "track"});
    const fill = el("div", {class: "fill"});
    fill.style.width = `${(share[i] * 100).toFixed(1)}%`;
    track.append(fill);
    row.append(el("span", {}, lab), track, el("span", {class: "pct"}, pct(share[i])));
    return row;
  }));
}

// --- the room over time ---------------------------------------------------------------------
function chartNow() {
  if (!page.chart) return;
  const rows = page.day ? page.day.summaries : page.summaries;
  page.chart.draw(rows);
  const what = page.day ? `${page.day.date}: ${rows.length} summaries from the log`
                        : `last hour, live: ${rows.length} summaries`;
  $("chart-note").textContent = rows.length ? what : `${what} (a summary is written every interval)`;
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
  page.summaries = page.summaries.filter((s) => newest - EmotionChart.unix(s.ts) <= RECENT_S);
}

// --- events from the monitor --------------------------------------------------------------------
function onRecord(rec) {
  if (rec.event === "summary") {
    page.summaries.push(rec);
    keepLastHour();
    if (!page.day) chartNow();
  } else if (rec.event === "model_changed") {
    page.labels = rec.labels;
    page.chart = new EmotionChart($("chart"), page.labels, page.colours);
    $("chart").replaceChildren();
    chartNow();
    loadModels();
  }
}

function onHealth(h) {
  const src = h.source || {};
  const pill = $("source");
  const state = src.live ? (src.state || "live") : (src.state === "live" || !src.state ? "playing" : src.state);
  pill.textContent = `${src.live ? "camera" : "video file"}: ${src.name} · ${state}`;
  pill.className = "pill" + (state === "down" || state === "reconnecting" ? " down" : "") + (/sample|demo/i.test(src.name || "") ? " demo" : "");
  $("fps").textContent = `${h.fps} fps`;
  const rows = [
    ["source", `${src.name} (${src.live ? "live" : "file"})`],
    ["state", src.down_since ? `${state} since ${clock(src.down_since)}` : state],
    ["frames per second", h.fps], ["uptime", `${Math.round(h.uptime_s)} s`], ["frames", h.frames],
    ["bad frames", h.bad_frames], ["dropped frames", h.dropped_frames],
    ["source failures", h.source_failures], ["events", h.events],
    ["viewers", `${h.viewers} page(s), ${h.video_viewers} picture stream(s)`],
    ["photos classified", `${h.photos} (${h.photos_refused} refused)`],
  ];
  for (const [name, out] of Object.entries(h.outputs || {})) {   // each output's own counters
    rows.push([name, Object.entries(out).map(([k, v]) => `${k}: ${v}`).join(" · ")]);
  }
  $("health-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {"data-key": k}, String(v))]));
}

function onHello(msg) {
  page.labels = msg.labels;
  page.colours = msg.colours;
  page.showVideo = msg.show_video;
  page.summaries = msg.summaries || [];
  keepLastHour();
  page.chart = new EmotionChart($("chart"), page.labels, page.colours);
  $("chart").replaceChildren();
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
  es.onerror = () => { $("source").textContent = "the monitor is not answering (stopped?)"; $("source").className = "pill down"; };
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
    ? el("li", {class: "unread"}, `too small to read at ${f.box.join(", ")}`)
    : el("li", {"data-emotion": f.emotion, colour: css(f.emotion)},
      `${f.emotion} ${pct(f.scores[f.emotion])} at ${f.box.join(", ")}`)) : [el("li", {}, "no faces found")]));
}

// --- the model --------------------------------------------------------------------------------
function showModel(m) {
  if (!m) return;
  const val = m.val || {};
  const rows = [["file", m.file], ["labels", (m.labels || []).join(", ")],
    ["accuracy", val.int8_accuracy != null ? `${(val.int8_accuracy * 100).toFixed(1)}% on ${val.n} faces (${val.scored_against})` : "not stated"],
    ["trained on", m.trained_on || "not stated"]];
  $("model-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {"data-key": k}, v)]));
}

async function loadModels() {
  const r = await fetch("/api/models");
  const body = await r.json();
  showModel(body.current);
  $("model-select").replaceChildren(...body.models.map((m) => {
    const o = el("option", {value: m.file}, m.file + (m.accuracy != null ? ` (${(m.accuracy * 100).toFixed(1)}%)` : "") + (m.in_use ? " · in use" : ""));
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
  if (r.ok) $("model-ok").textContent = `switched to ${file}`;
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
});
