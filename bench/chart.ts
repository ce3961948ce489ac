// The latency picture of the benchmark report: the cumulative distribution of each series (share of samples
// at or below a latency), latency on a log scale. Pure: samples in, SVG text out.
export interface Series {
  readonly name: string;
  readonly values: readonly number[];
}

const WIDTH = 760;
const HEIGHT = 420;
const MARGIN = { left: 64, right: 24, top: 40, bottom: 56 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const escape = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

export function latencyChart(title: string, series: readonly Series[]): string {
  const all = series.flatMap((entry) => entry.values).filter((value) => value > 0);
  const low = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number) =>
    MARGIN.left +
    ((Math.log10(Math.max(value, low)) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))) * plotWidth;
  const y = (share: number) => MARGIN.top + (1 - share) * plotHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(WIDTH)}" height="${String(HEIGHT)}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${String(WIDTH / 2)}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ];
  for (let decade = low; decade <= high; decade *= 10) {
    parts.push(
      `<line x1="${x(decade).toFixed(1)}" y1="${String(MARGIN.top)}" x2="${x(decade).toFixed(1)}" y2="${String(MARGIN.top + plotHeight)}" stroke="#ddd"/>`,
    );
    parts.push(
      `<text x="${x(decade).toFixed(1)}" y="${String(MARGIN.top + plotHeight + 16)}" text-anchor="middle">${decade >= 1000 ? `${String(decade / 1000)} s` : `${String(decade)} ms`}</text>`,
    );
  }
  for (const share of [0, 0.5, 0.9, 0.99, 1]) {
    parts.push(
      `<line x1="${String(MARGIN.left)}" y1="${y(share).toFixed(1)}" x2="${String(MARGIN.left + plotWidth)}" y2="${y(share).toFixed(1)}" stroke="#eee"/>`,
    );
    parts.push(
      `<text x="${String(MARGIN.left - 6)}" y="${(y(share) + 4).toFixed(1)}" text-anchor="end">${String(share * 100)}%</text>`,
    );
  }
  parts.push(
    `<text x="${String(MARGIN.left + plotWidth / 2)}" y="${String(HEIGHT - 14)}" text-anchor="middle">latency (log scale)</text>`,
  );
  series.forEach((entry, index) => {
    const sorted = [...entry.values].sort((a, b) => a - b);
    const color = COLORS[index % COLORS.length] ?? 'black';
    const points = sorted.map((value, rank) => `${x(value).toFixed(1)},${y((rank + 1) / sorted.length).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    parts.push(
      `<rect x="${String(MARGIN.left + 10)}" y="${String(MARGIN.top + 8 + index * 18)}" width="12" height="12" fill="${color}"/>`,
    );
    parts.push(
      `<text x="${String(MARGIN.left + 28)}" y="${String(MARGIN.top + 18 + index * 18)}">${escape(`${entry.name} (${String(sorted.length)} samples)`)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
