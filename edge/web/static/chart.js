"use strict";
// The room over time: each emotion's share of face-time per summary, and faces seen.
// Shared by the page, the kiosk and `emotion-edge report` (which inlines this file).
// The time axis always spans its window (the last hour is an hour wide with 0, 1, 2 or
// many summaries; a day is that day), never just the span of the points it has.
window.EmotionChart = class EmotionChart {
  // opts: names (label -> shown name), facesLabel, timeLabel, height (px; 0 = the element's height),
  // legend (uPlot's own legend), font (px of the axes' type)
  constructor(el, labels, colours, opts = {}) {
    this.el = el;
    this.labels = labels;
    this.colours = colours;
    this.opts = opts;
    this.span = null;
    this.plot = null;
  }

  static css(rgb) {
    const c = rgb || [0.5, 0.5, 0.5];
    return `rgb(${Math.round(c[0] * 255)}, ${Math.round(c[1] * 255)}, ${Math.round(c[2] * 255)})`;
  }

  static unix(ts) { return Date.parse(ts) / 1000; }

  // The window of the last `seconds` up to the newest summary or now, whichever is later
  // (a file played faster than real time writes summaries ahead of the clock).
  static lastWindow(summaries, seconds) {
    const newest = summaries.length ? EmotionChart.unix(summaries.at(-1).ts) : 0;
    const end = Math.max(Date.now() / 1000, newest);
    return [end - seconds, end];
  }

  // A local calendar day (YYYY-MM-DD) as [midnight, next midnight] (23 or 25 hours long
  // on the days the clocks change).
  static dayWindow(day) {
    const [y, m, d] = day.split("-").map(Number);
    return [new Date(y, m - 1, d).getTime() / 1000, new Date(y, m - 1, d + 1).getTime() / 1000];
  }

  static clock(t, seconds) {
    const d = new Date(t * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return seconds ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` : `${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // uPlot's columns; with a window, only the summaries inside it, between two empty points
  // at its edges (so the axis spans the window even with no summary at all).
  data(summaries) {
    let rows = summaries;
    if (this.span) {
      const [lo, hi] = this.span;
      rows = summaries.filter((s) => { const t = EmotionChart.unix(s.ts); return t >= lo && t <= hi; });
    }
    this.count = rows.length;
    const edge = (lo, mid, hi) => (this.span ? [lo, ...mid, hi] : mid);
    const x = edge(this.span?.[0], rows.map((s) => EmotionChart.unix(s.ts)), this.span?.[1]);
    const cols = this.labels.map((lab) => edge(null, rows.map((s) =>
      s.emotion_share && lab in s.emotion_share ? Math.round(s.emotion_share[lab] * 1000) / 10 : null), null));
    const faces = edge(null, rows.map((s) => s.faces_seen ?? null), null);
    return [x, ...cols, faces];
  }

  size() {
    const width = Math.max(200, Math.floor(this.el.clientWidth) || 800);
    const height = this.opts.height === 0 ? Math.max(80, Math.floor(this.el.clientHeight)) : (this.opts.height || 260);
    return {width, height};
  }

  // Draws `summaries` over `span` ([from, to], unix seconds; default: the points' own span).
  draw(summaries, span) {
    this.span = span || null;
    const {width, height} = this.size();
    const data = this.data(summaries);
    if (this.plot) {
      this.plot.setData(data);
      if (this.plot.width !== width || this.plot.height !== height) this.plot.setSize({width, height});
      return;
    }
    const names = this.opts.names || {};
    const px = this.opts.font || 12;
    const font = `${px}px system-ui, sans-serif`;
    // Room for the widest tick label (uPlot's default size is for 12 px type).
    const fits = (u, values) => Math.ceil(px * 0.62 * Math.max(2, ...(values || []).map((v) => String(v).length))) + px + 4;
    const axis = {stroke: "#aab4bf", grid: {stroke: "#2c333d"}, ticks: {stroke: "#2c333d", size: px / 2}, font, gap: px / 3};
    const series = [{label: this.opts.timeLabel || "time"}].concat(this.labels.map((lab) => ({
      label: names[lab] || lab, stroke: EmotionChart.css(this.colours[lab]), width: 2,
      points: {show: () => this.count < 80},
      value: (u, v) => v == null ? "-" : v.toFixed(0) + "%",
    })), [{label: this.opts.facesLabel || "faces seen", stroke: "#cccccc", dash: [6, 4], width: 1, scale: "faces"}]);
    this.plot = new uPlot({
      width, height, series,
      legend: {show: this.opts.legend !== false},
      hooks: {draw: [() => this.shown()]},          // uPlot draws (and sets its scales) later
      cursor: {show: this.opts.legend !== false},
      scales: {
        x: {time: true, range: (u, lo, hi) => this.span ? this.span.slice() : [lo ?? 0, hi ?? 1]},
        y: {range: [0, 100]},
        faces: {range: (u, lo, hi) => [0, Math.max(3, (hi ?? 0) + 1)]},
      },
      axes: [{...axis, space: 4.5 * px, size: Math.round(px * 2.4),
              values: (u, splits) => splits.map((t) => EmotionChart.clock(t, this.span && this.span[1] - this.span[0] < 600))},
             {...axis, space: 3.5 * px, size: fits, values: (u, v) => v.map((t) => t + "%")},
             {...axis, side: 1, scale: "faces", grid: {show: false}, space: 2.5 * px, size: fits,
              incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]}],
    }, data, this.el);
  }

  // Frees uPlot's window listeners (a page that makes a new chart on each reconnect or
  // model switch would otherwise keep every old one).
  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  // What the chart shows, for anyone checking (tests, a curious operator's devtools).
  shown() {
    const x = this.plot.scales.x;
    this.el.dataset.xmin = x.min;
    this.el.dataset.xmax = x.max;
    this.el.dataset.points = this.count;
  }
};
