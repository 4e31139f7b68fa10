/** The charts of docs/benchmarks.md (docs/bench/*.svg), drawn from the results. */
import { measured, type Results } from './results';
import { PAPER_BURST } from './paper';
import { lineChart, type Series } from './svg';

export interface Chart {
  file: string;
  svg: string;
}

export function charts(r: Results): Chart[] {
  const out: Chart[] = [];
  for (const g of ['rtt', 'ttfb'] as const) {
    const series: Series[] = [];
    for (const c of r.cases.filter((x) => x.group === g)) {
      for (const m of ['native', 'boxer'] as const) {
        const v = c[m];
        if (measured(v) && v.ecdf) series.push({ name: `${c.id.split('/')[1]} ${m}`, points: v.ecdf });
      }
    }
    out.push({
      file: `${g}-ecdf.svg`,
      svg: lineChart(series, {
        title: g === 'rtt' ? 'Round-trip time of 1 KiB messages (eCDF; paper Fig. 7)' : 'Time to first byte of a new connection (eCDF; paper Fig. 6)',
        xLabel: 'microseconds',
        yLabel: 'fraction of samples',
        logX: true,
        step: true,
        yRange: [0, 1],
      }),
    });
  }
  const agg = r.cases.filter((c) => c.group === 'aggregate');
  const series: Series[] = [];
  for (const m of ['native', 'boxer'] as const) {
    const pts = agg.flatMap((c): [number, number][] => {
      const v = c[m];
      return measured(v) ? [[Number(c.id.split('/')[1]), v.summary.median]] : [];
    });
    if (pts.length) series.push({ name: m === 'native' ? 'native: functions → vm1' : 'Boxer: functions → fp', points: pts });
  }
  const burst = r.cases.find((c) => c.id === 'apps/burst/rps-plateau')?.boxer;
  if (measured(burst) && burst.series?.length) {
    out.push({
      file: 'burst.svg',
      svg: lineChart(burst.series, {
        title: `Burst: requests/s served per second, per member (paper Fig. 8 right: first request ${PAPER_BURST.firstServedS} s, absorbed ${PAPER_BURST.absorbedS} s)`,
        xLabel: 'seconds of load',
        yLabel: 'requests/s',
        vlines: burstMarks(r, burst.note),
      }),
    });
  }
  out.push({ file: 'aggregate.svg', svg: lineChart(series, { title: 'Aggregate throughput into one node (paper Fig. 5)', xLabel: 'senders (iperf3 clients)', yLabel: 'Mbit/s', logX: true, markers: true }) });
  return out;
}

/**
 * The burst chart's marks: the functions' start (from the plateau case's note, "functions started at T s"),
 * and from there Boxer's medians and the paper's figures for the first request served and the burst absorbed.
 */
function burstMarks(r: Results, note: string | undefined): Array<{ x: number; label: string }> {
  const start = Number(/functions started at ([0-9.]+) s/.exec(note ?? '')?.[1]);
  if (!Number.isFinite(start)) return [];
  const med = (id: string) => {
    const v = r.cases.find((c) => c.id === id)?.boxer;
    return measured(v) ? v.summary.median / 1000 : NaN;
  };
  const first = med('apps/burst/first-served');
  const absorbed = med('apps/burst/absorbed');
  return [
    { x: start, label: 'functions start' },
    { x: start + first, label: `Boxer: first request (${first.toFixed(1)} s)` },
    { x: start + absorbed, label: `Boxer: absorbed (${absorbed.toFixed(1)} s)` },
    { x: start + PAPER_BURST.firstServedS, label: `paper: first request (${PAPER_BURST.firstServedS} s)` },
    { x: start + PAPER_BURST.absorbedS, label: `paper: absorbed (${PAPER_BURST.absorbedS} s)` },
  ];
}
