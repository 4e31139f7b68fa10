/**
 * A small SVG line-chart writer for the benchmark report (eCDF plots, throughput against the number of
 * senders). No dependencies; the output is standalone SVG 1.1 that browsers and GitHub render.
 * Every series is one <polyline class="series">, so tests can count them.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic x axis (all x must be > 0). */
  logX?: boolean;
  /** Draw the series as steps (eCDF) instead of straight segments. */
  step?: boolean;
  /** Mark every point with a dot (few points, e.g. 1, 2, 4, ... senders). */
  markers?: boolean;
  /** Fix the y range (e.g. [0, 1] for an eCDF); otherwise from the data, starting at 0 when all y >= 0. */
  yRange?: [number, number];
  /** Vertical marks (dashed, labelled at the top, stacked): events on the x axis, inside the x range. */
  vlines?: Array<{ x: number; label: string }>;
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DASHES = ['', '6 3', '2 2', '8 3 2 3'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, '');
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${fmt(v / 1e6)}M`;
  if (a >= 1e4) return `${fmt(v / 1e3)}k`;
  if (a >= 100 || a === 0) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

/** About `count` round ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)) && out.length < 60; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out.length >= 2 ? out : [lo, hi];
}

/** Where things go on a line chart: its size, margins, plot area, and the data-to-pixel maps. */
interface Scales {
  W: number;
  H: number;
  m: { left: number; right: number; top: number; bottom: number };
  pw: number;
  ph: number;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  X: (x: number) => number;
  Y: (y: number) => number;
}

function scales(series: readonly Series[], opts: ChartOptions): Scales {
  const W = opts.width ?? 720;
  const H = opts.height ?? 420;
  const m = { left: 70, right: 20, top: 40, bottom: 55 + 18 * Math.ceil(series.length / 3) };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!opts.logX || x > 0));
  const xs = [...all.map((p) => p[0]), ...(opts.vlines ?? []).map((v) => v.x).filter(Number.isFinite)];
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [1, 10];
  let [y0, y1] = opts.yRange ?? (all.length ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1]);
  if (!opts.yRange && y0 >= 0) y0 = 0;
  if (!opts.yRange) y1 = y1 + (y1 - y0) * 0.05;
  if (!(y1 > y0)) y1 = y0 + 1;
  if (opts.logX) {
    if (!(x1 > x0)) [x0, x1] = [x0 / 2, x1 * 2];
  } else if (!(x1 > x0)) [x0, x1] = [x0 - 1, x1 + 1];
  const tx = (x: number) => (opts.logX ? (Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) : (x - x0) / (x1 - x0));
  const X = (x: number) => m.left + tx(x) * pw;
  const Y = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;

  return { W, H, m, pw, ph, x0, x1, y0, y1, X, Y };
}

const px = (v: number) => v.toFixed(1);

export function lineChart(series: readonly Series[], opts: ChartOptions): string {
  const sc = scales(series, opts);
  const { W, H, m, pw, ph, x0, x1, y0, y1, X, Y } = sc;
  const p = px;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(opts.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(opts.title)}</text>`);
  // grid and ticks
  const xt = opts.logX ? logTicks(x0, x1) : niceTicks(x0, x1, 6);
  for (const v of xt) {
    out.push(`<line x1="${p(X(v))}" y1="${m.top}" x2="${p(X(v))}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${p(X(v))}" y="${m.top + ph + 16}" text-anchor="middle">${escapeXml(tickLabel(v))}</text>`);
  }
  for (const v of niceTicks(y0, y1, 5)) {
    out.push(`<line x1="${m.left}" y1="${p(Y(v))}" x2="${m.left + pw}" y2="${p(Y(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${p(Y(v) + 4)}" text-anchor="end">${escapeXml(tickLabel(v))}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 36}" text-anchor="middle">${escapeXml(opts.xLabel)}${opts.logX ? ' (log scale)' : ''}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`);
  (opts.vlines ?? []).forEach((v, i) => {
    if (!Number.isFinite(v.x)) return;
    const x = p(X(v.x));
    out.push(`<line class="vline" x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#555" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${p(X(v.x) + 4)}" y="${m.top + 14 + 14 * i}" fill="#333">${escapeXml(v.label)}</text>`);
  });
  drawSeries(out, series, opts, sc);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The series' lines (and markers), and their legend, three per row under the plot. */
function drawSeries(out: string[], series: readonly Series[], opts: ChartOptions, sc: Scales): void {
  const { m, pw, ph, X, Y } = sc;
  const p = px;
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!opts.logX || x > 0));
    const coords: string[] = [];
    pts.forEach(([x, y], j) => {
      if (opts.step && j > 0) coords.push(`${p(X(x))},${p(Y(pts[j - 1][1]))}`);
      coords.push(`${p(X(x))},${p(Y(y))}`);
    });
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    out.push(`<polyline class="series" data-name="${escapeXml(s.name)}" fill="none" stroke="${color}" stroke-width="1.8"${dashAttr} points="${coords.join(' ')}"/>`);
    if (opts.markers) for (const [x, y] of pts) out.push(`<circle cx="${p(X(x))}" cy="${p(Y(y))}" r="3" fill="${color}"/>`);
    // legend, three per row under the plot
    const lx = m.left + (i % 3) * (pw / 3);
    const ly = m.top + ph + 56 + 18 * Math.floor(i / 3);
    out.push(`<line x1="${p(lx)}" y1="${ly - 4}" x2="${p(lx + 24)}" y2="${ly - 4}" stroke="${color}" stroke-width="2.5"${dashAttr}/>`);
    out.push(`<text x="${p(lx + 30)}" y="${ly}">${escapeXml(s.name)}</text>`);
  });
}
