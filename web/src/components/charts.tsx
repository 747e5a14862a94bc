/**
 * Inline-SVG charts: stacked bars over days and rate bars. Drawn at the container's real pixel
 * width (not a scaled viewBox), so labels keep their size on a phone. Each chart has its numbers
 * in a data table too, for screen readers and for reading exact values.
 */
import type { ComponentChildren, RefObject } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { fmtPercent } from '../format';

function useElementWidth<T extends HTMLElement>(): [RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width];
}

/** The smallest 1/2/2.5/5 × 10^k at or above v, so axis ticks are round numbers. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v - 1e-12) return m * p;
  return 10 * p;
}

export function seriesColor(i: number): string {
  return `var(--series-${i % 8})`;
}

export function Legend({ series }: { series: string[] }) {
  return (
    <ul class="legend">
      {series.map((s, i) => (
        <li key={s}><span class="swatch" style={{ background: seriesColor(i) }} aria-hidden="true" />{s}</li>
      ))}
    </ul>
  );
}

export interface StackedBarsProps {
  label: string;
  categories: string[];
  series: string[];
  value: (category: string, series: string) => number;
  format: (n: number) => string;
  formatCategory?: (c: string) => string;
  height?: number;
}

export function StackedBars({ label, categories, series, value, format, formatCategory = (c) => c, height = 220 }: StackedBarsProps) {
  const [ref, width] = useElementWidth<HTMLDivElement>();
  const margin = { top: 10, right: 8, bottom: 26, left: 58 };
  const plotW = Math.max(0, width - margin.left - margin.right);
  const plotH = height - margin.top - margin.bottom;
  const totals = categories.map((c) => series.reduce((a, s) => a + Math.max(0, value(c, s)), 0));
  const max = niceCeil(Math.max(0, ...totals));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const slot = categories.length ? plotW / categories.length : 0;
  const barW = Math.max(1, Math.min(40, slot * 0.72));
  // Labels are thinned to fit, counted from the newest day so today always has one.
  const labelEvery = Math.max(1, Math.ceil(categories.length / Math.max(1, Math.floor(plotW / 52))));
  const y = (v: number) => margin.top + plotH - (v / max) * plotH;

  return (
    <figure class="chart">
      <div ref={ref} class="chart-canvas">
        {width > 0 && (
          <svg width={width} height={height} role="img" aria-label={`${label}: stacked bars per day; exact values are in the data table below.`}>
            {ticks.map((t) => (
              <g key={t} class="chart-grid">
                <line x1={margin.left} x2={width - margin.right} y1={y(t)} y2={y(t)} />
                <text x={margin.left - 6} y={y(t)} dy="0.32em" text-anchor="end">{format(t)}</text>
              </g>
            ))}
            {categories.map((c, ci) => {
              let acc = 0;
              const x = margin.left + ci * slot + (slot - barW) / 2;
              return (
                <g key={c}>
                  {series.map((s, si) => {
                    const v = Math.max(0, value(c, s));
                    if (v === 0) return null;
                    const y0 = y(acc);
                    acc += v;
                    const y1 = y(acc);
                    return (
                      <rect key={s} x={x} y={y1} width={barW} height={Math.max(1, y0 - y1)} style={{ fill: seriesColor(si) }}>
                        <title>{`${formatCategory(c)} · ${s}: ${format(v)}`}</title>
                      </rect>
                    );
                  })}
                  {(categories.length - 1 - ci) % labelEvery === 0 && (
                    <text class="chart-axis" x={x + barW / 2} y={height - 8} text-anchor="middle">{formatCategory(c)}</text>
                  )}
                </g>
              );
            })}
            <line class="chart-baseline" x1={margin.left} x2={width - margin.right} y1={y(0)} y2={y(0)} />
          </svg>
        )}
      </div>
      <figcaption>
        <Legend series={series} />
        <details class="chart-data">
          <summary>Data table</summary>
          <div class="table-scroll">
            <table>
              <caption class="visually-hidden">{label}</caption>
              <thead><tr><th scope="col">Day</th>{series.map((s) => <th key={s} scope="col" class="num">{s}</th>)}<th scope="col" class="num">Total</th></tr></thead>
              <tbody>
                {categories.map((c, ci) => (
                  <tr key={c}><th scope="row">{formatCategory(c)}</th>{series.map((s) => <td key={s} class="num">{format(value(c, s))}</td>)}<td class="num">{format(totals[ci] ?? 0)}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      </figcaption>
    </figure>
  );
}

export interface RateRow { key: string; rate: number | null; note: ComponentChildren }

/** One bar per row (e.g. success rate per task type), 0–100 %. */
export function RateBars({ label, rows }: { label: string; rows: RateRow[] }) {
  return (
    <ul class="rate-bars" aria-label={label}>
      {rows.map((r) => (
        <li key={r.key}>
          <span class="rate-label">{r.key}</span>
          <svg class="rate-track" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label={`${r.key}: ${fmtPercent(r.rate)}`}>
            <rect class="rate-bg" x="0" y="0" width="100" height="10" rx="2" />
            {r.rate !== null && <rect class="rate-fill" x="0" y="0" width={Math.max(0, Math.min(1, r.rate)) * 100} height="10" rx="2" />}
          </svg>
          <span class="rate-value"><strong>{fmtPercent(r.rate)}</strong> <span class="muted">{r.note}</span></span>
        </li>
      ))}
    </ul>
  );
}
