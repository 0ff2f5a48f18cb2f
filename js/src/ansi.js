// ANSI text frames (render_mode="ansi") as safe HTML: SGR colour codes become a highlight.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };

/** @param {string} text */
function escape(text) {
  return text.replace(/[&<>"]/g, (c) => ESCAPES[/** @type {keyof typeof ESCAPES} */ (c)]);
}

// Escape codes that are not colours (cursor moves, screen clears, modes such as "?25l").
const OTHER_CODES = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Text between colour codes as HTML: other codes dropped, the rest escaped. @param {string} text */
function segment(text) {
  return escape(text.replace(OTHER_CODES, ""));
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
    out += segment(text.slice(last, m.index));
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
  out += segment(text.slice(last));
  if (open) out += "</span>";
  return out;
}
