import { describe, expect, it } from "vitest";
import errorRs from "../../../shared/src/error.rs?raw";
import { apiError, FRIENDLY } from "./api";
import {
  candidateFromWire,
  candidateToWire,
  dbfs,
  lineKinds,
  loudest,
  mergeChat,
  readInvite,
  reconnectDelay,
  type ChatLine,
} from "./logic";

describe("lines", () => {
  it("are known by order and media kind, as Parley's engine offers them", () => {
    expect(lineKinds(["audio", "video", "video"])).toEqual(["audio", "camera", "screen"]);
  });

  it("from another stack's offer: extra lines are not ours, a missing screen is missing", () => {
    expect(lineKinds(["video", "audio", "audio", "video", "video", "application"])).toEqual([
      "camera",
      "audio",
      null,
      "screen",
      null,
      null,
    ]);
    expect(lineKinds(["audio", "video"])).toEqual(["audio", "camera"]);
    expect(lineKinds([])).toEqual([]);
  });
});

describe("reconnecting", () => {
  it("waits twice as long each time, from half a second up to eight", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(reconnectDelay)).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
  });
});

describe("ICE candidates", () => {
  it("round-trip through the wire form", () => {
    const c = {
      candidate: "candidate:1 1 udp 2122260223 10.77.0.2 54321 typ host",
      sdpMid: "0",
      sdpMLineIndex: 0,
      usernameFragment: "abcd",
    };
    const w = candidateToWire(c);
    expect(w).toEqual({ candidate: c.candidate, sdp_mid: "0", sdp_mline_index: 0, username_fragment: "abcd" });
    expect(candidateFromWire(w)).toEqual(c);
  });

  it("from a peer that leaves fields out", () => {
    expect(candidateFromWire({ candidate: "candidate:x" })).toEqual({
      candidate: "candidate:x",
      sdpMid: null,
      sdpMLineIndex: null,
      usernameFragment: null,
    });
  });
});

const line = (key: string, id: string, at: number, pending = false, text = key): ChatLine => ({
  key,
  id,
  seq: 0,
  sender: "Gia",
  guest: true,
  text,
  at_ms: at,
  mine: false,
  pending,
});

describe("chat", () => {
  it("lists new lines in time order", () => {
    let list: ChatLine[] = [];
    for (const l of [line("b", "2", 20), line("a", "1", 10), line("c", "3", 30)]) list = mergeChat(list, l).list;
    expect(list.map((l) => l.key)).toEqual(["a", "b", "c"]);
  });

  it("replaces a pending line when the server confirms it, keeping its place", () => {
    const sent = line("client-1", "client-1", 100, true, "hello");
    let r = mergeChat([line("x", "9", 50)], sent);
    expect(r.added).toBe(true);
    r = mergeChat(r.list, { ...line("client-1", "stored-7", 180, false, "hello") });
    expect(r.added).toBe(false);
    expect(r.list).toHaveLength(2);
    expect(r.list[1]).toMatchObject({ id: "stored-7", pending: false, at_ms: 100 });
  });

  it("does not repeat history sent again after a reconnect", () => {
    const first = mergeChat([], line("s-1", "s-1", 10)).list;
    const again = mergeChat(first, line("s-1", "s-1", 10));
    expect(again.added).toBe(false);
    expect(again.list).toHaveLength(1);
  });
});

describe("the invite hand-over", () => {
  it("reads the code and a personal link's token from the fragment", () => {
    expect(readInvite("#code=bcdf-ghjk-mnpq&g=tok_123")).toEqual({ code: "bcdf-ghjk-mnpq", linkToken: "tok_123", passcode: false });
    expect(readInvite("#code=bcdf-ghjk-mnpq")).toEqual({ code: "bcdf-ghjk-mnpq", linkToken: null, passcode: false });
    expect(readInvite("")).toEqual({ code: null, linkToken: null, passcode: false });
    expect(readInvite("#g=&code=")).toEqual({ code: null, linkToken: null, passcode: false });
  });

  it("and whether the meeting has a passcode, as the invite page says", () => {
    expect(readInvite("#code=bcdf-ghjk-mnpq&p=1").passcode).toBe(true);
    expect(readInvite("#code=bcdf-ghjk-mnpq&p=1&g=tok").passcode).toBe(true);
    expect(readInvite("#code=bcdf-ghjk-mnpq&p=0").passcode).toBe(false);
  });
});

describe("levels", () => {
  it("are dBFS: a full-scale square is 0, half is -6, silence the floor", () => {
    expect(dbfs([1, -1, 1, -1])).toBeCloseTo(0, 6);
    expect(dbfs([0.5, -0.5])).toBeCloseTo(-6.02, 2);
    expect(dbfs(new Float32Array(1024))).toBe(-100);
    expect(dbfs([])).toBe(-100);
    expect(dbfs([1e-9])).toBe(-100);
  });

  it("make the loudest speaker above -50 dBFS the active one", () => {
    expect(loudest({ a: -30, b: -20, c: -60 })).toBe("b");
    expect(loudest({ a: -70, b: -55 })).toBeNull();
    expect(loudest({})).toBeNull();
  });
});

describe("refusals", () => {
  // Every code the page explains must be one the server sends (shared/src/error.rs).
  const serverCodes = new Set(
    [...errorRs.matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1]),
  );

  it("explain only codes the server has", () => {
    expect(serverCodes.size).toBeGreaterThan(40);
    const unknown = Object.keys(FRIENDLY).filter((c) => !serverCodes.has(c));
    expect(unknown).toEqual([]);
  });

  it("are told in the page's words, else the server's, else by status", () => {
    const removed = apiError(403, { error: { code: "guest_removed", message: "guest was removed" } });
    expect(removed.code).toBe("guest_removed");
    expect(removed.status).toBe(403);
    expect(removed.message).toMatch(/removed a guest/);
    expect(apiError(400, { error: { code: "some_new_code", message: "the server's words" } }).message).toBe("the server's words");
    const html = apiError(502, null);
    expect(html.code).toBe("error");
    expect(html.message).toBe("The server answered 502.");
    expect(apiError(500, { error: { code: 7 } }).code).toBe("error");
  });
});
