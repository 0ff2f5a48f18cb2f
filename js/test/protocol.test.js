import { describe, expect, it, vi } from "vitest";
import { KernelError, LONG_REQUEST_MS, createClient, errorArea, typedArray } from "../src/protocol.js";
import { FakeModel, tick } from "./fake_model.js";

describe("createClient", () => {
  it("matches responses to its own request ids", async () => {
    const model = new FakeModel({});
    model.kernel.hello = (_p, id) => {
      model.respond("someone-else-1", { wrong: true });
      model.respond(id, { right: true });
    };
    const client = createClient(model);
    const reply = await client.request("hello");
    expect(reply.result).toEqual({ right: true });
    expect(model.sent[0].content).toMatchObject({ kind: "request", method: "hello", params: {} });
  });

  it("rejects with the kernel's exception type on an error response", async () => {
    const model = new FakeModel({});
    model.kernel.stop = (_p, id) => model.fail(id, "UnknownWorkerError", "no worker 'x'");
    const client = createClient(model);
    const err = await client.request("stop", { worker_id: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(err.type).toBe("UnknownWorkerError");
    expect(err.message).toContain("no worker 'x'");
  });

  it("times out when the kernel never answers", async () => {
    const model = new FakeModel({});
    const client = createClient(model, { timeoutMs: 20 });
    await expect(client.request("hello")).rejects.toThrow(/no answer to hello/);
  });

  it("stops listening once disposed", () => {
    const model = new FakeModel({});
    const client = createClient(model);
    expect(model.listenerCount("msg:custom")).toBe(1);
    client.dispose();
    expect(model.listenerCount("msg:custom")).toBe(0);
  });
});

describe("typedArray", () => {
  it("reads aligned and misaligned buffers", () => {
    const source = new Float32Array([1.5, -2, 3]);
    const bytes = new Uint8Array(source.buffer);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const misaligned = new DataView(shifted.buffer, 1, bytes.length);
    expect(Array.from(typedArray([source.buffer], { buffer: 0, dtype: "float32" }))).toEqual([1.5, -2, 3]);
    expect(Array.from(typedArray([misaligned], { buffer: 0, dtype: "float32" }))).toEqual([1.5, -2, 3]);
  });

  it("names a missing buffer or an unknown dtype", () => {
    expect(() => typedArray([], { buffer: 0, dtype: "int32" })).toThrow(/no buffer 0/);
    expect(() => typedArray([new ArrayBuffer(4)], { buffer: 0, dtype: "complex" })).toThrow(/unknown dtype complex/);
  });
});

describe("errorArea", () => {
  it("shows the error trait and clears it on dismiss", async () => {
    const model = new FakeModel({ error: "" });
    const el = document.createElement("div");
    errorArea(model, el);
    const box = el.querySelector(".nbt-error-area");
    expect(box.hidden).toBe(true);
    model.set("error", "stop: UnknownWorkerError: no worker 'x'");
    expect(box.hidden).toBe(false);
    expect(box.textContent).toContain("no worker 'x'");
    box.querySelector("button").click();
    expect(model.get("error")).toBe("");
    expect(model.saves).toBe(1);
    expect(box.hidden).toBe(true);
  });
});

describe("per-request time limits", () => {
  it("a long request waits longer than the client's default before it reports no answer", async () => {
    vi.useFakeTimers();
    try {
      const model = new FakeModel({});
      const client = createClient(model, { timeoutMs: 1000 });
      const quick = client.request("ping").catch((e) => e.message);
      const slow = client.request("archive", {}, { timeoutMs: 5000 }).catch((e) => e.message);
      await vi.advanceTimersByTimeAsync(1500);
      expect(await quick).toBe("no answer to ping within 1 s");
      const id = model.requests("archive")[0].content.id;
      model.respond(id, { counts: {} });
      expect(await slow).toEqual({ result: { counts: {} }, buffers: [] });
      expect(LONG_REQUEST_MS).toBeGreaterThanOrEqual(5 * 60_000);
    } finally {
      vi.useRealTimers();
    }
  });
});
