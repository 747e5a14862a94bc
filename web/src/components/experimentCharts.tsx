/**
 * Grouped bars for experiment results: one group per category (task type), one bar per series
 * (model), optionally with an interval drawn as an error bar (the 95 % Wilson interval of a
 * success rate). Drawn at the container's pixel width like the other charts; when there are too
 * many bars for the width, the chart keeps a minimum bar width and scrolls sideways. Every value
 * is also in a data table below it.
 */
import type { RefObject } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Legend, niceCeil, seriesColor } from './charts';

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

export interface BarValue {
  value: number;
  low?: number | null;
  high?: number | null;
  /** Extra text for the tooltip and the data table (e.g. "2/3"). */
  note?: string;
}

export interface GroupedBarsProps {
  label: string;
  categories: string[];
  series: string[];
  /** null: no data for this pair (no bar, "–" in the table). */
  value: (category: string, series: string) => BarValue | null;
  format: (n: number) => string;
  /** Fixed top of the axis (1 for rates); otherwise a round number above the largest value. */
  max?: number;
  /** Heading of the categories' column in the data table. */
  categoryHeading: string;
  /** Column heading for the interval in the data table, when values have one. */
  intervalHeading?: string;
  height?: number;
}

const MIN_BAR = 10;

export function GroupedBars({ label, categories, series, value, format, max, categoryHeading, intervalHeading, height = 230 }: GroupedBarsProps) {
  const [ref, measured] = useElementWidth<HTMLDivElement>();
  const margin = { top: 12, right: 8, bottom: 28, left: 52 };
  const perGroup = Math.max(1, series.length);
  const minWidth = margin.left + margin.right + categories.length * (perGroup * (MIN_BAR + 3) + 18);
  const width = measured > 0 ? Math.max(measured, minWidth) : 0;
  const plotW = Math.max(0, width - margin.left - margin.right);
  const plotH = height - margin.top - margin.bottom;
  const values = categories.flatMap((c) => series.map((s) => value(c, s))).filter((v): v is BarValue => v !== null);
  const top = max ?? niceCeil(Math.max(0, ...values.map((v) => Math.max(v.value, v.high ?? 0))));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * top);
  const slot = categories.length ? plotW / categories.length : 0;
  const groupW = slot * 0.8;
  const barW = Math.max(2, Math.min(44, groupW / perGroup - 3));
  const groupInner = perGroup * barW + (perGroup - 1) * 3;
  const y = (v: number) => margin.top + plotH - (Math.max(0, Math.min(top, v)) / top) * plotH;
  const hasInterval = values.some((v) => v.low !== undefined && v.low !== null);

  return (
    <figure class="chart xp-chart">
      <div ref={ref} class="chart-canvas xp-chart-canvas">
        {width > 0 && (
          <svg width={width} height={height} role="img" aria-label={`${label}; exact values are in the data table below.`}>
            {ticks.map((t) => (
              <g key={t} class="chart-grid">
                <line x1={margin.left} x2={width - margin.right} y1={y(t)} y2={y(t)} />
                <text x={margin.left - 6} y={y(t)} dy="0.32em" text-anchor="end">{format(t)}</text>
              </g>
            ))}
            {categories.map((c, ci) => {
              const x0 = margin.left + ci * slot + (slot - groupInner) / 2;
              return (
                <g key={c} data-category={c}>
                  {series.map((s, si) => {
                    const v = value(c, s);
                    if (!v) return null;
                    const x = x0 + si * (barW + 3);
                    const y1 = y(v.value);
                    const h = Math.max(v.value > 0 ? 1 : 0, y(0) - y1);
                    const interval = v.low !== undefined && v.low !== null && v.high !== undefined && v.high !== null ? { lo: y(v.low), hi: y(v.high) } : null;
                    const tip = `${c} · ${s}: ${format(v.value)}${v.note ? ` (${v.note})` : ''}${interval ? `, 95 % CI ${format(v.low!)}–${format(v.high!)}` : ''}`;
                    return (
                      <g key={s} class="xp-bar-g" data-series={s}>
                        <rect x={x} y={y(0) - h} width={barW} height={h} style={{ fill: seriesColor(si) }} class="xp-bar-rect"><title>{tip}</title></rect>
                        {interval && (
                          <g class="xp-ci" aria-hidden="true">
                            <line x1={x + barW / 2} x2={x + barW / 2} y1={interval.lo} y2={interval.hi} />
                            <line x1={x + barW / 2 - Math.min(5, barW / 2)} x2={x + barW / 2 + Math.min(5, barW / 2)} y1={interval.lo} y2={interval.lo} />
                            <line x1={x + barW / 2 - Math.min(5, barW / 2)} x2={x + barW / 2 + Math.min(5, barW / 2)} y1={interval.hi} y2={interval.hi} />
                          </g>
                        )}
                      </g>
                    );
                  })}
                  <text class="chart-axis" x={margin.left + ci * slot + slot / 2} y={height - 9} text-anchor="middle">{c}</text>
                </g>
              );
            })}
            <line class="chart-baseline" x1={margin.left} x2={width - margin.right} y1={y(0)} y2={y(0)} />
          </svg>
        )}
      </div>
      <figcaption>
        <Legend series={series} />
        {hasInterval && <p class="muted small xp-chart-note">Error bars: 95 % Wilson score interval.</p>}
        <details class="chart-data">
          <summary>Data table</summary>
          <div class="table-scroll">
            <table>
              <caption class="visually-hidden">{label}</caption>
              <thead>
                <tr>
                  <th scope="col">{categoryHeading}</th>
                  <th scope="col">Model</th>
                  <th scope="col" class="num">Value</th>
                  {intervalHeading && <th scope="col" class="num">{intervalHeading}</th>}
                </tr>
              </thead>
              <tbody>
                {categories.flatMap((c) => series.map((s) => {
                  const v = value(c, s);
                  if (!v) return null;
                  return (
                    <tr key={`${c}|${s}`}>
                      <th scope="row">{c}</th>
                      <td class="mono small">{s}</td>
                      <td class="num">{format(v.value)}{v.note ? ` (${v.note})` : ''}</td>
                      {intervalHeading && <td class="num">{v.low !== undefined && v.low !== null && v.high !== undefined && v.high !== null ? `${format(v.low)}–${format(v.high)}` : '–'}</td>}
                    </tr>
                  );
                }))}
              </tbody>
            </table>
          </div>
        </details>
      </figcaption>
    </figure>
  );
}
