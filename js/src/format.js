// Number formatting shared by the views.

/**
 * A number to three significant digits. Never throws: jupyter_client sends NaN and ±inf as
 * the strings "nan" / "inf", and one throw here would abort a whole redraw.
 * @param {unknown} v
 */
export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3);
}
