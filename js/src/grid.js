// Drawing the toy-text grid worlds from a GridMap ({kind, rows}) and the agent's position
// (the observation; Taxi: its encoded state).

import { h } from "./protocol.js";

/** @typedef {{kind: string, rows: string[]}} GridMap */
/** @typedef {{ch: string, cls: string, agent: boolean, label?: string, wallRight?: boolean}} Cell */

/** Taxi's state ((row*5 + col)*5 + passenger)*4 + destination, decoded. @param {number} s */
export function taxiDecode(s) {
  if (!Number.isInteger(s) || s < 0 || s >= 500) throw new RangeError(`Taxi state ${s} is out of range 0..499`);
  const destination = s % 4;
  s = Math.floor(s / 4);
  const passenger = s % 5;
  s = Math.floor(s / 5);
  return { row: Math.floor(s / 5), col: s % 5, passenger, destination };
}

const TAXI_LOCS = [[0, 0], [0, 4], [4, 0], [4, 3]];
const CELL_CLASS = { S: "start", F: "frozen", H: "hole", G: "goal", C: "cliff", ".": "free" };

/**
 * The grid as rows of cells, with the agent placed; pure, so it is tested without a DOM.
 * @param {GridMap} grid
 * @param {number | null | undefined} position
 * @returns {Cell[][]}
 */
export function gridCells(grid, position) {
  if (grid.kind === "taxi") return taxiCells(grid, position);
  const ncols = grid.rows[0]?.length ?? 0;
  const pos = Number.isInteger(position) ? /** @type {number} */ (position) : -1;
  return grid.rows.map((row, r) =>
    Array.from(row, (ch, c) => ({
      ch,
      cls: CELL_CLASS[/** @type {keyof typeof CELL_CLASS} */ (ch)] ?? "free",
      agent: r * ncols + c === pos,
    })),
  );
}

/** @param {GridMap} grid @param {number | null | undefined} position */
function taxiCells(grid, position) {
  // MAP rows: a border line, then "|R: | : :G|": cell c at 2c+1, a wall after it at 2c+2.
  const body = grid.rows.slice(1, -1);
  const state = Number.isInteger(position) ? taxiDecode(/** @type {number} */ (position)) : null;
  return body.map((line, r) =>
    Array.from({ length: 5 }, (_, c) => {
      const ch = line[2 * c + 1] ?? " ";
      /** @type {Cell} */
      const cell = { ch: ch === " " ? "" : ch, cls: ch === " " ? "free" : "depot", agent: false, wallRight: line[2 * c + 2] === "|" && c < 4 };
      if (state) {
        if (state.row === r && state.col === c) {
          cell.agent = true;
          cell.label = state.passenger === 4 ? "taxi+P" : "taxi";
        }
        const [dr, dc] = TAXI_LOCS[state.destination];
        if (dr === r && dc === c) cell.cls += " destination";
        if (state.passenger < 4) {
          const [pr, pc] = TAXI_LOCS[state.passenger];
          if (pr === r && pc === c) cell.cls += " passenger";
        }
      }
      return cell;
    }),
  );
}

/** Where the agent starts (the 'S' cell), for a replay's step 0. @param {GridMap} grid */
export function startPosition(grid) {
  if (grid.kind === "taxi") return null;
  const ncols = grid.rows[0]?.length ?? 0;
  for (let r = 0; r < grid.rows.length; r++) {
    const c = grid.rows[r].indexOf("S");
    if (c >= 0) return r * ncols + c;
  }
  return null;
}

/**
 * Draw the grid into `container` (replacing what was there).
 * @param {HTMLElement} container
 * @param {GridMap} grid
 * @param {number | null | undefined} position
 */
export function renderGrid(container, grid, position) {
  const cells = gridCells(grid, position);
  const table = h("div", `nbt-grid nbt-grid-${grid.kind}`);
  table.style.gridTemplateColumns = `repeat(${cells[0]?.length ?? 1}, var(--nbt-cell, 28px))`;
  for (const row of cells) {
    for (const cell of row) {
      const node = h("div", `nbt-cell nbt-cell-${cell.cls.split(" ").join(" nbt-cell-")}`, cell.ch === "." ? "" : cell.ch);
      if (cell.wallRight) node.classList.add("nbt-wall-right");
      if (cell.agent) {
        node.classList.add("nbt-agent");
        node.title = cell.label ?? "agent";
      }
      table.append(node);
    }
  }
  container.replaceChildren(table);
}
