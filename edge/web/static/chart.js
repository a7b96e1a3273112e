"use strict";
// The room over time: each emotion's share of face-time per summary, and faces seen.
// Shared by the page and by `emotion-edge report` (which inlines this file).
window.EmotionChart = class EmotionChart {
  constructor(el, labels, colours) {
    this.el = el;
    this.labels = labels;
    this.colours = colours;
    this.plot = null;
  }

  static css(rgb) {
    const c = rgb || [0.5, 0.5, 0.5];
    return `rgb(${Math.round(c[0] * 255)}, ${Math.round(c[1] * 255)}, ${Math.round(c[2] * 255)})`;
  }

  static unix(ts) { return Date.parse(ts) / 1000; }

  data(summaries) {
    const x = summaries.map((s) => EmotionChart.unix(s.ts));
    const cols = this.labels.map((lab) => summaries.map((s) =>
      s.emotion_share && lab in s.emotion_share ? Math.round(s.emotion_share[lab] * 1000) / 10 : null));
    const faces = summaries.map((s) => s.faces_seen ?? null);
    return [x, ...cols, faces];
  }

  draw(summaries) {
    const width = Math.max(300, this.el.clientWidth || 800);
    if (this.plot) { this.plot.setData(this.data(summaries)); this.plot.setSize({width, height: 260}); return; }
    const series = [{}].concat(this.labels.map((lab) => ({
      label: lab, stroke: EmotionChart.css(this.colours[lab]), width: 2, points: {show: summaries.length < 80},
      value: (u, v) => v == null ? "-" : v.toFixed(0) + "%",
    })), [{label: "faces seen", stroke: "#cccccc", dash: [6, 4], width: 1, scale: "faces"}]);
    this.plot = new uPlot({
      width, height: 260, series,
      scales: {x: {time: true}, y: {range: [0, 100]}, faces: {range: (u, lo, hi) => [0, Math.max(3, hi + 1)]}},
      axes: [{stroke: "#8a96a3", grid: {stroke: "#2c333d"}},
             {stroke: "#8a96a3", grid: {stroke: "#2c333d"}, values: (u, v) => v.map((t) => t + "%")},
             {side: 1, scale: "faces", stroke: "#8a96a3", grid: {show: false}}],
    }, this.data(summaries), this.el);
  }
};
