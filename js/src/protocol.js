// Request/response over custom widget messages, and binary buffer decoding.
// Protocol: docs/widgets.md. Every request carries an id; the kernel answers each with
// exactly one {kind: "response", id, ok, result | error}, possibly with buffers.

/** A widget's model as anywidget hands it to a view (anywidget's own types, from npm). */
/** @typedef {import("@anywidget/types").AnyModel} WidgetModel */
/** anywidget's host (0.11+), which renders a child widget from its reference. */
/** @typedef {import("@anywidget/types").Host} Host */

/** @typedef {{buffer: number, dtype: string}} BufferRef */
/** @typedef {{result: any, buffers: Array<ArrayBuffer | DataView>}} Reply */

let clientCounter = 0;

/** For requests that end when the kernel has finished real work (launching after stopping
 * the runs before, stopping workers, deleting or archiving a large run): a slow answer is
 * not a lost one, so such a request waits this long before it reports none. */
export const LONG_REQUEST_MS = 10 * 60_000;

/** An error answered by the kernel: keeps the Python exception type. */
export class KernelError extends Error {
  /** @param {string} type @param {string} message */
  constructor(type, message) {
    super(`${type}: ${message}`);
    this.name = "KernelError";
    this.type = type;
  }
}

/**
 * A request client bound to one view; answers to other views' requests are ignored.
 * @param {WidgetModel} model
 * @param {{timeoutMs?: number}} [options]
 */
export function createClient(model, options = {}) {
  const timeoutMs = options.timeoutMs ?? 60_000;
  clientCounter += 1;
  const prefix = `v${clientCounter}-${Math.random().toString(36).slice(2, 8)}`;
  let next = 0;
  /** @type {Map<string, {resolve: (r: Reply) => void, reject: (e: Error) => void, timer: any}>} */
  const pending = new Map();

  /** @param {any} msg @param {Array<ArrayBuffer | DataView>} [buffers] */
  function onMessage(msg, buffers) {
    if (!msg || msg.kind !== "response") return;
    const entry = pending.get(msg.id);
    if (!entry) return;
    pending.delete(msg.id);
    clearTimeout(entry.timer);
    if (msg.ok) entry.resolve({ result: msg.result, buffers: buffers ?? [] });
    else entry.reject(new KernelError(msg.error?.type ?? "Error", msg.error?.message ?? ""));
  }
  model.on("msg:custom", onMessage);

  return {
    viewId: prefix,
    /**
     * @param {string} method
     * @param {Record<string, any>} [params]
     * @param {{timeoutMs?: number}} [options]
     * @returns {Promise<Reply>}
     */
    request(method, params = {}, options = {}) {
      next += 1;
      const id = `${prefix}-${next}`;
      const limitMs = options.timeoutMs ?? timeoutMs;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`no answer to ${method} within ${limitMs / 1000} s`));
        }, limitMs);
        pending.set(id, { resolve, reject, timer });
        model.send({ kind: "request", id, method, params });
      });
    },
    dispose() {
      model.off("msg:custom", onMessage);
      for (const entry of pending.values()) clearTimeout(entry.timer);
      pending.clear();
    },
  };
}

const ARRAYS = {
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
};

/**
 * The typed array a {buffer, dtype} reference points at (copied when misaligned).
 * @param {Array<ArrayBuffer | DataView | Uint8Array>} buffers
 * @param {BufferRef} ref
 * @returns {ArrayLike<number>}
 */
export function typedArray(buffers, ref) {
  const raw = buffers[ref.buffer];
  if (raw === undefined) throw new Error(`message has no buffer ${ref.buffer}`);
  const Ctor = ARRAYS[/** @type {keyof typeof ARRAYS} */ (ref.dtype)];
  if (!Ctor) throw new Error(`unknown dtype ${ref.dtype}`);
  const view = raw instanceof ArrayBuffer ? new Uint8Array(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = Ctor.BYTES_PER_ELEMENT;
  const aligned = view.byteOffset % size === 0 ? view : view.slice();
  const count = Math.floor(aligned.byteLength / size);
  // int64 travels as BigInt64; the views want plain numbers
  if (Ctor === BigInt64Array) return Array.from(new BigInt64Array(aligned.buffer, aligned.byteOffset, count), Number);
  return new (/** @type {typeof Float64Array} */ (Ctor))(/** @type {ArrayBuffer} */ (aligned.buffer), aligned.byteOffset, count);
}

/**
 * Raw bytes of a buffer reference.
 * @param {Array<ArrayBuffer | DataView | Uint8Array>} buffers
 * @param {BufferRef} ref
 */
export function bytesOf(buffers, ref) {
  const raw = buffers[ref.buffer];
  if (raw === undefined) throw new Error(`message has no buffer ${ref.buffer}`);
  return raw instanceof ArrayBuffer ? new Uint8Array(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/**
 * Show the widget's `error` trait (errors raised by Python callbacks) with a dismiss button.
 * @param {WidgetModel} model
 * @param {HTMLElement} parent
 */
export function errorArea(model, parent) {
  const box = document.createElement("div");
  box.className = "nbt-error-area";
  box.setAttribute("role", "alert");
  const text = document.createElement("pre");
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => {
    model.set("error", "");
    model.save_changes();
  });
  box.append(text, dismiss);
  parent.append(box);
  const update = () => {
    const message = model.get("error") || "";
    text.textContent = message;
    box.hidden = !message;
  };
  update();
  model.on("change:error", update);
  return () => model.off("change:error", update);
}

/** @param {string} tag @param {string} [className] @param {string} [text] */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const KEPT_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown", " "]);

/**
 * Keys that move inside a control (arrows in a dropdown or on a slider, typing in a box)
 * stay in the widget: without this JupyterLab's command mode also sees them and moves the
 * active cell. Escape and shortcuts with Ctrl/Meta/Shift+Enter still reach JupyterLab.
 * @param {HTMLElement} root @returns {() => void} removes the listener
 */
export function keepKeysInside(root) {
  /** @param {KeyboardEvent} e */
  const onKey = (e) => {
    const t = /** @type {HTMLElement | null} */ (e.target);
    if (!t || !root.contains(t)) return;
    const tag = t.tagName;
    const control = tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || t.getAttribute("role") === "listbox";
    if (!control) return;
    if (e.key === "Enter" && (e.shiftKey || e.ctrlKey || e.metaKey)) return;
    if (e.key === "Escape") return;
    if (KEPT_KEYS.has(e.key) || tag !== "SELECT") e.stopPropagation();
  };
  root.addEventListener("keydown", onKey);
  return () => root.removeEventListener("keydown", onKey);
}

/**
 * While a kernel serves this view, hide the static twin the kernel displayed right after
 * it (widgets/fallback.py): that table is for a saved notebook opened without a kernel.
 * @param {HTMLElement} el
 */
export function hideStaticTwin(el) {
  let tries = 0;
  const look = () => {
    const child = el.closest(".jp-OutputArea-child, .output_area");
    const next = /** @type {HTMLElement | null} */ (child?.nextElementSibling ?? null);
    if (next?.querySelector(".nbtrain-static")) next.style.display = "none";
    else if (tries++ < 20) setTimeout(look, 100);
  };
  look();
}
