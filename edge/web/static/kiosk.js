"use strict";
// The public screen (/kiosk): read-only, runs for months without anyone reloading it.
// One event stream (/kiosk/stream) and, in live mode, the picture (/kiosk/video.mjpg);
// both reconnect by themselves with backoff after the service restarts or the network
// blips, and the status pill says "reconnecting" meanwhile. Memory stays flat: the
// chart keeps the last hour (and at most MAX_POINTS summaries), the DOM is reused.
const $ = (id) => document.getElementById(id);
const STRINGS = JSON.parse($("strings").textContent);
const WINDOW_S = 3600;
const MAX_POINTS = 3600;            // a summary a second for an hour
const STALL_MS = 5000;              // the server sends health every second
const RETRY_MS = [500, 1000, 2000, 4000, 5000];
const MODE = document.body.dataset.mode;           // "live" | "room"
const VIDEO = document.body.dataset.video === "1";  // live mode with the picture on

const k = {labels: [], colours: {}, summaries: [], chart: null, frame: null, es: null, tries: 0,
  timer: 0, chartTimer: 0, heard: 0, boot: null, videoTries: 0, bars: new Map(), redraw: 0};

function t(key, values = {}) {
  const s = STRINGS[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in values ? values[name] : m));
}
const facesText = (n) => t(n === 1 ? "common.faces_one" : "common.faces_other", {n});
const emotion = (lab) => STRINGS[`emotion.${lab}`] ?? lab;
const css = (lab) => EmotionChart.css(k.colours[lab]);
const pct = (p) => `${Math.round(p * 100)}%`;

// --- connection state ---------------------------------------------------------------------
function setState(state) {
  if (document.body.dataset.state === state) return;
  document.body.dataset.state = state;
  $("status").textContent = t(`state.${state}`);
}

function connect() {
  clearTimeout(k.timer);
  if (k.es) k.es.close();
  const es = k.es = new EventSource("/kiosk/stream");
  k.heard = performance.now();
  es.onmessage = (ev) => {
    k.heard = performance.now();
    const msg = JSON.parse(ev.data);
    if (msg.type === "now") showNow(msg);
    else if (msg.type === "summary") addSummary(msg.record);
    else if (msg.type === "health") showHealth(msg);
    else if (msg.type === "hello") hello(msg);
  };
  es.onerror = () => { if (es === k.es) lost(); };
}

function lost() {
  if (k.es) { k.es.close(); k.es = null; }
  setState(k.boot === null ? "connecting" : "reconnecting");
  stale();
  clearTimeout(k.timer);
  k.timer = setTimeout(connect, RETRY_MS[Math.min(k.tries++, RETRY_MS.length - 1)]);
}

// A connection that has gone quiet (a half-open socket after a network blip) is dead too.
setInterval(() => { if (k.es && performance.now() - k.heard > STALL_MS) lost(); }, 1000);

function startVideo() {
  const video = $("video");
  if (!VIDEO) return;
  video.hidden = false;
  video.src = `/kiosk/video.mjpg?n=${++k.videoTries}`;   // a new URL: a new connection
}

function hello(msg) {
  k.tries = 0;
  k.boot = msg.boot;
  document.body.dataset.boot = msg.boot;
  k.labels = msg.labels;
  k.colours = msg.colours;
  k.summaries = [];
  for (const s of msg.summaries || []) keep(s);
  if (k.chart) k.chart.destroy();
  k.chart = new EmotionChart($("chart"), k.labels, k.colours, {height: 0, legend: false,
    names: Object.fromEntries(k.labels.map((lab) => [lab, emotion(lab)])),
    facesLabel: t("common.faces_seen"), timeLabel: t("common.time"), font: chartFont()});
  $("chart").replaceChildren();
  k.bars.clear();
  $("shares").replaceChildren();
  legend();
  chartNow();
  startVideo();
  setState("live");
  if (msg.now) showNow(msg.now);
}

// --- the room now ---------------------------------------------------------------------------
function bar(lab) {
  let b = k.bars.get(lab);
  if (!b) {
    const row = document.createElement("div");
    row.className = "bar";
    row.setAttribute("role", "listitem");
    row.dataset.label = lab;
    row.style.setProperty("--c", css(lab));
    const name = document.createElement("span");
    name.textContent = emotion(lab);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    track.append(fill);
    const share = document.createElement("span");
    share.className = "pct";
    row.append(name, track, share);
    $("shares").append(row);
    b = {fill, share};
    k.bars.set(lab, b);
  }
  return b;
}

function showNow(msg) {
  k.frame = msg;
  $("now").dataset.t = msg.t;
  const dom = $("dominant");
  dom.textContent = msg.dominant ? emotion(msg.dominant) : (msg.n ? "—" : t("common.nobody"));
  dom.dataset.emotion = msg.dominant || "";
  dom.classList.toggle("none", !msg.dominant);
  dom.style.setProperty("--c", msg.dominant ? css(msg.dominant) : "");
  $("faces").textContent = facesText(msg.n);
  k.labels.forEach((lab, i) => {
    const b = bar(lab);
    const p = msg.shares[i] || 0;
    b.fill.style.width = `${(p * 100).toFixed(1)}%`;
    b.share.textContent = pct(p);
  });
  if (MODE === "live") drawFaces(msg);
}

// The monitor is out of reach: show no "now" that is no longer true (the last hour stays).
function stale() {
  k.frame = null;
  const dom = $("dominant");
  dom.textContent = "—";
  dom.dataset.emotion = "";
  dom.classList.add("none");
  $("faces").textContent = "";
  for (const b of k.bars.values()) { b.fill.style.width = "0"; b.share.textContent = "—"; }
  const canvas = $("overlay");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  $("video").hidden = true;
}

// Each face's box and emotion on the picture, the label on a solid chip of the emotion's
// colour with dark text (readable on any picture).
function drawFaces(msg) {
  const canvas = $("overlay");
  const stage = $("stage");
  const W = stage.clientWidth, H = stage.clientHeight;
  if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  if (!msg.w || !msg.h || !msg.faces) return;
  const s = Math.min(W / msg.w, H / msg.h);             // object-fit: contain
  const ox = (W - msg.w * s) / 2, oy = (H - msg.h * s) / 2;
  if (!VIDEO) { ctx.fillStyle = "#20262e"; ctx.fillRect(ox, oy, msg.w * s, msg.h * s); }
  const px = Math.max(12, Math.round(Math.min(W, H) / 18));
  ctx.font = `600 ${px}px system-ui, "Noto Sans CJK SC", sans-serif`;
  ctx.lineWidth = Math.max(2, px / 6);
  ctx.textBaseline = "middle";
  for (const f of msg.faces) {
    const [x, y, w, h] = f.box;
    const colour = css(f.emotion);
    ctx.strokeStyle = colour;
    ctx.strokeRect(ox + x * s, oy + y * s, w * s, h * s);
    const text = `${emotion(f.emotion)} ${pct(f.score)}`;
    const cw = ctx.measureText(text).width + px * 0.8, ch = px * 1.4;
    const cx = Math.min(Math.max(ox, ox + x * s), ox + msg.w * s - cw);
    const cy = oy + y * s - ch >= oy ? oy + y * s - ch : oy + (y + h) * s;   // above the box, else below
    ctx.fillStyle = colour;
    ctx.fillRect(cx, cy, cw, ch);
    ctx.fillStyle = "#111418";
    ctx.fillText(text, cx + px * 0.4, cy + ch / 2);
  }
}

function showHealth(h) {
  const src = h.source || {};
  const pill = $("source");
  const down = src.state && src.state !== "live";
  pill.hidden = !down && src.live !== false;
  pill.textContent = down ? t("state.camera_down") : t("state.video_file");
  pill.dataset.state = src.state || "";
}

// --- the last hour ------------------------------------------------------------------------------
function keep(rec) {
  k.summaries.push(rec);
  const newest = EmotionChart.unix(rec.ts);
  let drop = 0;
  while (drop < k.summaries.length && newest - EmotionChart.unix(k.summaries[drop].ts) > WINDOW_S) drop++;
  drop = Math.max(drop, k.summaries.length - MAX_POINTS);
  if (drop > 0) k.summaries.splice(0, drop);
}

function addSummary(rec) {
  keep(rec);
  if (!k.chartTimer) k.chartTimer = setTimeout(() => { k.chartTimer = 0; chartNow(); }, 250);   // one redraw for a burst
}

function chartFont() {
  return Math.max(11, Math.round(parseFloat(getComputedStyle(document.body).fontSize) * 0.8));
}

function chartNow() {
  if (!k.chart) return;
  k.chart.draw(k.summaries, EmotionChart.lastWindow(k.summaries, WINDOW_S));
}

function legend() {
  const items = k.labels.map((lab) => {
    const li = document.createElement("li");
    li.style.setProperty("--c", css(lab));
    li.textContent = emotion(lab);
    return li;
  });
  const faces = document.createElement("li");
  faces.className = "faces-seen";
  faces.textContent = t("common.faces_seen");
  $("legend").replaceChildren(...items, faces);
}

function clock() {
  $("clock").textContent = EmotionChart.clock(Date.now() / 1000);
}

// --- wiring ---------------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  $("privacy").hidden = !(MODE === "live" && !VIDEO);
  $("room-note").hidden = MODE !== "room";
  clock();
  setInterval(clock, 10000);
  setInterval(chartNow, 30000);            // the window moves on even without summaries
  $("video").addEventListener("error", () => {   // the picture's stream broke: try again
    if (k.es && document.body.dataset.state === "live") setTimeout(startVideo, RETRY_MS.at(-1));
  });
  new ResizeObserver(() => {               // a screen rotated or resized: refit
    cancelAnimationFrame(k.redraw);
    k.redraw = requestAnimationFrame(() => { chartNow(); if (k.frame) showNow(k.frame); });
  }).observe($("chart"));
  connect();
});
