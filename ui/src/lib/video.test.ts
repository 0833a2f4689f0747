import { describe, expect, it } from "vitest";
import { parsePacket } from "./video";

// The video packet reader against packets written the way src-tauri/src/meeting/video.rs
// `packet` writes them, and against hundreds of thousands of random and corrupted buffers
// (a seeded property test: cargo fuzz cannot reach TypeScript).

function rng(seed: number): () => number {
  // mulberry32: small, fast, good enough to spread test inputs.
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: () => number, n: number) => Math.floor(r() * n);

/** A packet as the engine writes it: [format, kind, width LE, height LE, id length, id, pixels]. */
function write(format: 1 | 2, kind: number, width: number, height: number, peer: string, fill: (i: number) => number): ArrayBuffer {
  const id = new TextEncoder().encode(peer).slice(0, 255);
  const pixels = format === 2 ? width * height * 4 : width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
  const out = new Uint8Array(7 + id.length + pixels);
  out[0] = format;
  out[1] = kind;
  out[2] = width & 0xff;
  out[3] = width >> 8;
  out[4] = height & 0xff;
  out[5] = height >> 8;
  out[6] = id.length;
  out.set(id, 7);
  for (let i = 0; i < pixels; i++) out[7 + id.length + i] = fill(i);
  return out.buffer;
}

/** What must hold of any frame the reader returns: every view inside the packet, sized by it. */
function checkFrame(buf: ArrayBuffer, f: NonNullable<ReturnType<typeof parsePacket>>) {
  expect(f.width).toBeGreaterThan(0);
  expect(f.height).toBeGreaterThan(0);
  const inside = (a: ArrayBufferView) => {
    expect(a.buffer).toBe(buf);
    expect(a.byteOffset + a.byteLength).toBeLessThanOrEqual(buf.byteLength);
  };
  if (f.rgba) {
    expect(f.rgba.length).toBe(f.width * f.height * 4);
    inside(f.rgba);
  } else {
    const c = Math.ceil(f.width / 2) * Math.ceil(f.height / 2);
    expect([f.y!.length, f.u!.length, f.v!.length]).toEqual([f.width * f.height, c, c]);
    [f.y!, f.u!, f.v!].forEach(inside);
  }
}

describe("video packets", () => {
  it("read back what the engine writes, for odd sizes, both formats and any peer id", () => {
    const r = rng(1);
    const peers = ["p1", "01J9ZK3V8Q2M5N7P4R6T8W0XYZ", "Zoë", "😀".repeat(70), ""];
    for (let n = 0; n < 400; n++) {
      const format = (1 + int(r, 2)) as 1 | 2;
      const [w, h] = [1 + int(r, 41), 1 + int(r, 31)];
      const peer = peers[int(r, peers.length)]!;
      const kind = int(r, 3);
      const buf = write(format, kind, w, h, peer, (i) => (i * 7 + n) & 0xff);
      const f = parsePacket(buf);
      expect(f, `${format} ${w}x${h}`).not.toBeNull();
      checkFrame(buf, f!);
      expect([f!.kind, f!.width, f!.height]).toEqual([kind, w, h]);
      if (new TextEncoder().encode(peer).length <= 255) expect(f!.peer).toBe(peer);
      const first = f!.rgba ? f!.rgba[0] : f!.y![0];
      expect(first).toBe(n & 0xff);
      if (!f!.rgba) expect(f!.v![f!.v!.length - 1]).toBe((((w * h + 2 * f!.u!.length - 1) * 7) + n) & 0xff);
      // Cut short anywhere: no frame, never a frame read past the end.
      for (const cut of [1, 2, 7, int(r, buf.byteLength) + 1]) {
        if (cut <= buf.byteLength) expect(parsePacket(buf.slice(0, buf.byteLength - cut))).toBeNull();
      }
    }
  });

  it("never throw and never return a frame outside the packet, on 200,000 random or corrupted ones", () => {
    const r = rng(2);
    let frames = 0;
    for (let n = 0; n < 200_000; n++) {
      let buf: ArrayBuffer;
      if (n % 2 === 0) {
        const bytes = new Uint8Array(int(r, 64));
        for (let i = 0; i < bytes.length; i++) bytes[i] = int(r, 256);
        // Small sizes make whole frames likely: format 1 or 2, width and height 0-3.
        if (bytes.length > 6 && r() < 0.5) {
          bytes[0] = 1 + int(r, 2);
          bytes[2] = int(r, 4);
          bytes[3] = 0;
          bytes[4] = int(r, 4);
          bytes[5] = 0;
          bytes[6] = int(r, 8);
        }
        buf = bytes.buffer;
      } else {
        const good = new Uint8Array(write((1 + int(r, 2)) as 1 | 2, int(r, 3), 1 + int(r, 9), 1 + int(r, 9), "peer", () => int(r, 256)));
        for (let k = 0; k < 1 + int(r, 4); k++) good[int(r, Math.min(good.length, 12))] = int(r, 256);
        buf = good.buffer.slice(0, good.length - int(r, 3));
      }
      const f = parsePacket(buf);
      if (f) {
        frames++;
        checkFrame(buf, f);
      }
    }
    expect(frames).toBeGreaterThan(10_000); // the corruptions reached the frame-building paths
  });

  it("refuse empty pictures and unknown formats", () => {
    expect(parsePacket(write(1, 0, 0, 10, "p", () => 0))).toBeNull();
    expect(parsePacket(write(2, 0, 10, 0, "p", () => 0))).toBeNull();
    const odd = new Uint8Array(write(1, 0, 2, 2, "p", () => 0));
    odd[0] = 3;
    expect(parsePacket(odd.buffer)).toBeNull();
    expect(parsePacket(new ArrayBuffer(0))).toBeNull();
  });
});
