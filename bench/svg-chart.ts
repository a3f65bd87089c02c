// A small hand-written SVG chart: horizontal grouped bars on a log10 axis, one group per
// figure and one bar per series, with a reference line at 1 (the baseline). No chart library.

export interface ChartSeries {
  name: string;
  color: string;
}

export interface ChartGroup {
  label: string;
  /** One entry per series, in series order: a ratio, or a short text when there is none ("failed", "—"). */
  values: (number | string)[];
}

export interface BarChartOptions {
  title: string;
  subtitle: string;
  series: ChartSeries[];
  groups: ChartGroup[];
  /** Axis range (ratios), powers of ten. */
  min: number;
  max: number;
  footnote?: string;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function formatRatio(r: number): string {
  if (r >= 10) return r.toFixed(0);
  if (r >= 0.0995) return r.toFixed(2);
  if (r >= 0.00995) return r.toFixed(3);
  return r.toPrecision(1);
}

export function barChartSvg(o: BarChartOptions): string {
  const width = 960;
  const labelW = 300;
  const plotW = width - labelW - 90;
  const barH = 11;
  const barGap = 2;
  const groupGap = 16;
  const top = 92;
  const groupH = o.series.length * (barH + barGap) - barGap;
  const plotH = o.groups.length * (groupH + groupGap) - groupGap;
  const height = top + plotH + 56;
  const lmin = Math.log10(o.min);
  const lmax = Math.log10(o.max);
  const x = (v: number): number => labelW + ((Math.log10(Math.min(Math.max(v, o.min), o.max)) - lmin) / (lmax - lmin)) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  out.push(`<text x="12" y="40" fill="#444">${esc(o.subtitle)}</text>`);
  // Legend.
  let lx = 12;
  for (const s of o.series) {
    out.push(`<rect x="${lx}" y="52" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 16}" y="62">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 6.6;
  }
  // Band behind every other group, then the grid over them, then the bars.
  o.groups.forEach((_, gi) => {
    const gy = top + gi * (groupH + groupGap);
    if (gi % 2 === 0) out.push(`<rect x="4" y="${gy - 4}" width="${width - 8}" height="${groupH + 8}" fill="#f3f3f3"/>`);
  });
  // Grid: decades, with the baseline (1) drawn strongly.
  for (let e = Math.ceil(lmin); e <= Math.floor(lmax); e++) {
    const v = 10 ** e;
    const gx = x(v).toFixed(1);
    const strong = e === 0;
    out.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${top + plotH + 4}" stroke="${strong ? '#000' : '#ccc'}" stroke-width="${strong ? 1.5 : 1}"${strong ? '' : ' stroke-dasharray="3,3"'}/>`);
    out.push(`<text x="${gx}" y="${top + plotH + 18}" text-anchor="middle" fill="#333">${esc(strong ? '1x (raw)' : `${e < 0 ? `0.${'0'.repeat(-e - 1)}1` : String(v)}x`)}</text>`);
  }
  o.groups.forEach((g, gi) => {
    const gy = top + gi * (groupH + groupGap);
    out.push(`<text x="${labelW - 10}" y="${gy + groupH / 2 + 4}" text-anchor="end">${esc(g.label)}</text>`);
    o.series.forEach((s, si) => {
      const by = gy + si * (barH + barGap);
      const v = g.values[si];
      if (typeof v === 'number' && Number.isFinite(v) && v > 0) {
        const x0 = x(o.min);
        const x1 = x(v);
        out.push(`<rect x="${x0.toFixed(1)}" y="${by}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${barH}" fill="${s.color}"><title>${esc(`${s.name}: ${formatRatio(v)}x`)}</title></rect>`);
        out.push(`<text x="${(x1 + 4).toFixed(1)}" y="${by + barH - 2}" font-size="9.5" fill="#222">${esc(`${formatRatio(v)}x`)}</text>`);
      } else {
        out.push(`<text x="${(x(o.min) + 4).toFixed(1)}" y="${by + barH - 2}" font-size="9.5" fill="#888">${esc(typeof v === 'string' ? `${s.name}: ${v}` : `${s.name}: —`)}</text>`);
      }
    });
  });
  // The baseline again, over the bars.
  const one = x(1).toFixed(1);
  if (lmin < 0 && lmax > 0) out.push(`<line x1="${one}" y1="${top - 8}" x2="${one}" y2="${top + plotH + 4}" stroke="#000" stroke-width="1.5"/>`);
  if (o.footnote !== undefined) out.push(`<text x="12" y="${height - 12}" fill="#444" font-size="10">${esc(o.footnote)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
