// A widget model as anywidget hands it to a view: traits, change events, custom messages.
// `kernel` answers requests the way the Python side would (tests supply the answers).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export class FakeModel {
  /** @param {Record<string, any>} state */
  constructor(state) {
    this.state = { error: "", ...state };
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
    /** @type {Array<{content: any, buffers: any[]}>} */
    this.sent = [];
    this.saves = 0;
    /** @type {Record<string, (params: any, id: string) => any>} */
    this.kernel = {};
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    this.state[name] = value;
    this.emit(`change:${name}`);
  }
  save_changes() { this.saves += 1; }
  on(event, cb) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(cb);
  }
  off(event, cb) {
    if (!event) this.listeners.clear();
    else if (!cb) this.listeners.delete(event);
    else this.listeners.get(event)?.delete(cb);
  }
  emit(event, ...args) {
    for (const cb of [...(this.listeners.get(event) ?? [])]) cb(...args);
  }
  listenerCount(event) { return this.listeners.get(event)?.size ?? 0; }
  send(content, _callbacks, buffers) {
    this.sent.push({ content, buffers: buffers ?? [] });
    const handler = content.kind === "request" ? this.kernel[content.method] : undefined;
    if (handler) {
      Promise.resolve().then(() => handler(content.params, content.id));
    }
  }
  /** Kernel → view custom message. */
  receive(content, buffers = []) { this.emit("msg:custom", content, buffers); }
  respond(id, result, buffers = []) { this.receive({ kind: "response", id, ok: true, result }, buffers); }
  fail(id, type, message) { this.receive({ kind: "response", id, ok: false, error: { type, message } }); }
  requests(method) { return this.sent.filter((m) => m.content.method === method); }
}

const decode = (m) => ({
  content: m.content,
  buffers: m.buffers.map((b) => {
    const bytes = Buffer.from(b, "base64");
    return new DataView(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }),
});

/** @param {string} name */
function readFixture(name) {
  return JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "fixtures", name), "utf8"));
}

/**
 * One worker's episodes, pandas' rolling mean of 20 over them, the live deltas a
 * dashboard got at several episode rates and the snapshot rebuilt from the store.
 */
export function loadCurveFixture() {
  const data = readFixture("curves.json");
  const live = Object.fromEntries(Object.entries(data.live).map(([rate, deltas]) => [rate, deltas.map(decode)]));
  return { ...data, live, store: decode(data.store) };
}

/** Messages produced by the Python side (tests/widgets/test_widget_js_fixture.py keeps it current). */
export function loadFixture() {
  const data = readFixture("protocol.json");
  return {
    snapshot: decode(data.snapshot),
    deltas: data.deltas.map(decode),
    form: data.form,
    vocab: data.vocab,
  };
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
