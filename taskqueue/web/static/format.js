// Pure formatting and chart arithmetic for the dashboard (no DOM, no fetch): tested in a real
// browser by tests/test_dashboard.py::test_formatting_module.

const DASH = "—";

/** 1234567 -> "1,234,567"; null/undefined -> "—". */
export function count(n) {
  if (n === null || n === undefined || Number.isNaN(+n)) return DASH;
  return Math.round(+n).toLocaleString("en-US");
}

/** Jobs per second with a sensible precision: 0 -> "0", 0.25 -> "0.25", 12.345 -> "12.3". */
export function rate(perS) {
  if (perS === null || perS === undefined) return DASH;
  const v = +perS;
  if (v === 0) return "0";
  if (v < 1) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return count(v);
}

/** Milliseconds as "850 ms", "1.5 s", "2 min 5 s", "3 h 10 min"; null -> "—". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(+ms)) return DASH;
  const v = +ms;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
  const s = Math.round(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.floor(s / 60);
  if (m < 1440) return `${Math.floor(m / 60)} h ${m % 60} min`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

/** Bytes as MiB/GiB: 52428800 -> "50.0 MiB". */
export function bytes(n) {
  if (n === null || n === undefined || !(+n >= 0)) return DASH;
  const mib = +n / 1048576;
  if (mib >= 1024) return `${(mib / 1024).toFixed(2)} GiB`;
  return `${mib.toFixed(1)} MiB`;
}

/** A ratio as a percentage: 0.9531 -> "95.3 %"; null -> "—". */
export function percent(r, digits = 1) {
  if (r === null || r === undefined || Number.isNaN(+r)) return DASH;
  return `${(+r * 100).toFixed(digits)} %`;
}

/** How long ago an epoch-ms time was, seen from nowMs: "12 s ago", "in 3 min 0 s". */
export function ago(ms, nowMs) {
  if (!ms) return DASH;
  const d = nowMs - ms;
  return d >= 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
}

/** "HH:MM" of an epoch-seconds time, in the browser's zone. */
export function clock(epochS) {
  const d = new Date(epochS * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** The smallest 1, 2 or 5 times a power of ten that is >= v (an axis top); at least 1. */
export function niceMax(v) {
  if (!(v > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Jobs processed (finished attempts: succeeded + failed) from a totals map. */
export function processed(totals) {
  if (!totals) return null;
  return (+totals.succeeded || 0) + (+totals.failed || 0);
}

/** Stacked bars: one column per point, each value a segment stacked from the bottom.
 *  series: {name: [values]} (equal lengths); returns {max, bars: [{x, w, segs: [{name, y, h}]}]}
 *  in a width x height box with `pad` pixels left for the axis. */
export function stackedBars(series, width, height, pad = 28) {
  const names = Object.keys(series);
  const n = names.length ? series[names[0]].length : 0;
  const sums = Array.from({ length: n }, (_, i) => names.reduce((a, k) => a + (+series[k][i] || 0), 0));
  const max = niceMax(Math.max(0, ...sums));
  const slot = n ? (width - pad) / n : 0;
  const bars = [];
  for (let i = 0; i < n; i++) {
    let y = height;
    const segs = [];
    for (const name of names) {
      const h = ((+series[name][i] || 0) / max) * height;
      if (h > 0) { y -= h; segs.push({ name, y, h }); }
    }
    bars.push({ x: pad + i * slot + slot * 0.1, w: Math.max(1, slot * 0.8), segs });
  }
  return { max, bars };
}

/** Points of a polyline for values over a width x height box (oldest left): "x,y x,y ...". */
export function linePoints(values, width, height, max = null) {
  const top = max ?? niceMax(Math.max(0, ...values));
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / top) * height).toFixed(1)}`).join(" ");
}

/** Page arithmetic: {from, to, total, prev, next} (1-based from/to for display). */
export function page(offset, limit, total) {
  return {
    from: total ? offset + 1 : 0,
    to: Math.min(offset + limit, total),
    total,
    prev: offset > 0 ? Math.max(0, offset - limit) : null,
    next: offset + limit < total ? offset + limit : null,
  };
}
