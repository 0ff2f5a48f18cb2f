// ANSI text frames (render_mode="ansi") as safe HTML: SGR colour codes become a highlight.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };

/** @param {string} text */
function escape(text) {
  return text.replace(/[&<>"]/g, (c) => ESCAPES[/** @type {keyof typeof ESCAPES} */ (c)]);
}

/**
 * @param {string} text
 * @returns {string} HTML
 */
export function ansiToHtml(text) {
  let out = "";
  let open = false;
  const re = /\x1b\[([0-9;]*)m/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out += escape(text.slice(last, m.index));
    last = re.lastIndex;
    const codes = m[1] === "" ? [0] : m[1].split(";").map(Number);
    if (open) {
      out += "</span>";
      open = false;
    }
    if (codes.some((code) => code !== 0)) {
      out += '<span class="nbt-ansi-hl">';
      open = true;
    }
  }
  out += escape(text.slice(last).replace(/\x1b\[[0-9;]*[A-Za-z]/g, ""));
  if (open) out += "</span>";
  return out;
}
