// Video from the engine: binary packets over a Tauri channel (never JSON), drawn with WebGL
// from I420 where WebGL runs on a GPU, or from RGBA (converted in Rust) on a 2D canvas where
// WebGL would run in software.
//
// Packet layout (src-tauri/src/meeting.rs `packet`): [format (1 I420, 2 RGBA), kind,
// width u16 LE, height u16 LE, id length, id bytes…, pixels].

import { Channel } from "@tauri-apps/api/core";
import { commands, type VideoFormat } from "../bindings";

export const KIND_CAMERA = 0;
export const KIND_SCREEN = 1;
export const KIND_SELF = 2;

export interface Frame {
  peer: string;
  kind: number;
  width: number;
  height: number;
  /** I420 planes (format 1) … */
  y?: Uint8Array;
  u?: Uint8Array;
  v?: Uint8Array;
  /** … or RGBA pixels (format 2). */
  rgba?: Uint8ClampedArray<ArrayBuffer>;
}

export function parsePacket(buf: ArrayBuffer): Frame | null {
  const view = new DataView(buf);
  if (buf.byteLength < 7) return null;
  const format = view.getUint8(0);
  const kind = view.getUint8(1);
  const width = view.getUint16(2, true);
  const height = view.getUint16(4, true);
  const idLen = view.getUint8(6);
  // An empty picture is no frame (a texture or canvas of size 0 is an error to draw).
  if (width === 0 || height === 0 || buf.byteLength < 7 + idLen) return null;
  const peer = new TextDecoder().decode(new Uint8Array(buf, 7, idLen));
  const start = 7 + idLen;
  if (format === 2) {
    const size = width * height * 4;
    if (buf.byteLength < start + size) return null;
    return { peer, kind, width, height, rgba: new Uint8ClampedArray(buf, start, size) };
  }
  if (format !== 1) return null;
  const ySize = width * height;
  const cSize = Math.ceil(width / 2) * Math.ceil(height / 2);
  if (buf.byteLength < start + ySize + 2 * cSize) return null;
  return {
    peer,
    kind,
    width,
    height,
    y: new Uint8Array(buf, start, ySize),
    u: new Uint8Array(buf, start + ySize, cSize),
    v: new Uint8Array(buf, start + ySize + cSize, cSize),
  };
}

/** I420 for a WebGL shader, or RGBA (converted in Rust) for a 2D canvas without WebGL. Rust
 * also picks RGBA where WebGL would run in software: WebKit tells pages no real renderer. */
export function preferredFormat(): VideoFormat {
  const gl = document.createElement("canvas").getContext("webgl");
  gl?.getExtension("WEBGL_lose_context")?.loseContext();
  return gl ? "i420" : "rgba";
}

export function trackKey(peer: string, kind: number): string {
  return `${peer}/${kind}`;
}

const VERTEX = `
attribute vec2 pos;
varying vec2 uv;
void main() {
  uv = vec2((pos.x + 1.0) / 2.0, (1.0 - pos.y) / 2.0);
  gl_Position = vec4(pos, 0.0, 1.0);
}`;

// BT.601 limited range, as the engine's encoder and decoder use.
const FRAGMENT = `
precision mediump float;
varying vec2 uv;
uniform sampler2D ty;
uniform sampler2D tu;
uniform sampler2D tv;
void main() {
  float y = (texture2D(ty, uv).r - 0.0625) * 1.164;
  float u = texture2D(tu, uv).r - 0.5;
  float v = texture2D(tv, uv).r - 0.5;
  gl_FragColor = vec4(y + 1.596 * v, y - 0.392 * u - 0.813 * v, y + 2.017 * u, 1.0);
}`;

/** Draws frames on one canvas: I420 with WebGL, RGBA with a 2D context (picked at the first frame). */
export class I420Renderer {
  private gl: WebGLRenderingContext | null = null;
  private textures: WebGLTexture[] = [];
  private ctx2d: CanvasRenderingContext2D | null = null;
  private texSize = "";

  constructor(private canvas: HTMLCanvasElement) {}

  /** "webgl" or "2d" once a frame was drawn. */
  get kind(): string {
    return this.gl ? "webgl" : this.ctx2d ? "2d" : "";
  }

  private setupGl(): boolean {
    // preserveDrawingBuffer: the picture can be read back (tests, screenshots).
    const gl = this.canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: false, alpha: false });
    if (!gl) return false;
    const shader = (type: number, src: string) => {
      const s = gl.createShader(type);
      if (!s) return null;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      return gl.getShaderParameter(s, gl.COMPILE_STATUS) ? s : null;
    };
    const vs = shader(gl.VERTEX_SHADER, VERTEX);
    const fs = shader(gl.FRAGMENT_SHADER, FRAGMENT);
    const prog = gl.createProgram();
    if (!vs || !fs || !prog) return false;
    gl.attachShader(prog, vs);
    gl.attachShader(prog, fs);
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) return false;
    gl.useProgram(prog);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const pos = gl.getAttribLocation(prog, "pos");
    gl.enableVertexAttribArray(pos);
    gl.vertexAttribPointer(pos, 2, gl.FLOAT, false, 0, 0);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    ["ty", "tu", "tv"].forEach((name, i) => {
      const t = gl.createTexture();
      if (!t) return;
      gl.activeTexture(gl.TEXTURE0 + i);
      gl.bindTexture(gl.TEXTURE_2D, t);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
      gl.uniform1i(gl.getUniformLocation(prog, name), i);
      this.textures.push(t);
    });
    if (this.textures.length !== 3) return false;
    this.gl = gl;
    return true;
  }

  draw(f: Frame) {
    if (this.canvas.width !== f.width || this.canvas.height !== f.height) {
      this.canvas.width = f.width;
      this.canvas.height = f.height;
    }
    if (f.rgba) {
      this.ctx2d ??= this.canvas.getContext("2d", { alpha: false });
      this.ctx2d?.putImageData(new ImageData(f.rgba, f.width, f.height), 0, 0);
      return;
    }
    const { y, u, v } = f;
    if (!y || !u || !v || (!this.gl && !this.setupGl())) return;
    const gl = this.gl;
    if (!gl) return;
    const cw = Math.ceil(f.width / 2);
    const ch = Math.ceil(f.height / 2);
    const planes: [Uint8Array, number, number][] = [
      [y, f.width, f.height],
      [u, cw, ch],
      [v, cw, ch],
    ];
    // Storage is allocated when the size changes; later frames only replace the pixels.
    const fresh = this.texSize !== `${f.width}x${f.height}`;
    this.texSize = `${f.width}x${f.height}`;
    planes.forEach(([data, w, h], i) => {
      gl.activeTexture(gl.TEXTURE0 + i);
      gl.bindTexture(gl.TEXTURE_2D, this.textures[i] ?? null);
      if (fresh) gl.texImage2D(gl.TEXTURE_2D, 0, gl.LUMINANCE, w, h, 0, gl.LUMINANCE, gl.UNSIGNED_BYTE, data);
      else gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, w, h, gl.LUMINANCE, gl.UNSIGNED_BYTE, data);
    });
    gl.viewport(0, 0, f.width, f.height);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}

type Sink = (f: Frame) => void;

interface TrackStats {
  /** Frames drawn since the start. */
  drawn: number;
  /** Frames drawn in the last whole second. */
  fps: number;
  width: number;
  height: number;
}

/**
 * Receives every frame, keeps the newest per track and draws each track at most once per
 * display refresh. Tells Rust which frames it is done with, so Rust never sends more
 * than the UI can take.
 */
class VideoHub {
  private sinks = new Map<string, Sink>();
  private latest = new Map<string, Frame>();
  /** Track keys of frames done (drawn or replaced) not yet reported, one entry per frame. */
  private done: string[] = [];
  private counting = new Map<string, number>();
  readonly stats = new Map<string, TrackStats>();
  private started = false;
  /** Packets that arrived, and frames reported done, since the start. */
  received = 0;
  frames = 0;
  drawMs = 0;
  acked = 0;
  private scheduled = false;
  /** The pixel format Rust sends. */
  format: VideoFormat | "" = "";

  start() {
    if (this.started) return;
    this.started = true;
    const channel = new Channel<unknown>();
    channel.onmessage = (msg) => {
      this.received++;
      if (!(msg instanceof ArrayBuffer)) return;
      const f = parsePacket(msg);
      if (!f) return;
      const key = trackKey(f.peer, f.kind);
      if (this.latest.has(key)) this.done.push(key); // replaced before it was drawn
      this.latest.set(key, f);
      this.schedule();
    };
    void commands.watchVideo(channel, preferredFormat()).then((r) => {
      if (r.status === "ok") this.format = r.data;
    });
    // Frames done are also reported right after each animation frame (see `schedule`); this
    // covers a hidden window, where animation frames stop.
    setInterval(() => this.report(), 100);
    setInterval(() => {
      for (const [key, s] of this.stats) {
        s.fps = this.counting.get(key) ?? 0;
      }
      this.counting.clear();
    }, 1000);
    // For tests and the rendering benchmark: what was drawn, per track.
    (window as unknown as { parleyVideo: unknown }).parleyVideo = {
      stats: () => Object.fromEntries(this.stats),
      counters: () => ({ received: this.received, acked: this.acked, pending: this.latest.size, rafs: this.frames, drawMs: this.drawMs, format: this.format }),
    };
  }

  private report() {
    if (this.done.length === 0) return;
    const tracks = this.done;
    this.done = [];
    this.acked += tracks.length;
    void commands.framesDrawn(tracks);
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      const t0 = performance.now();
      this.frames++;
      for (const [key, f] of this.latest) {
        const sink = this.sinks.get(key);
        if (sink) {
          sink(f);
          const s = this.stats.get(key) ?? { drawn: 0, fps: 0, width: 0, height: 0 };
          s.drawn++;
          s.width = f.width;
          s.height = f.height;
          this.stats.set(key, s);
          this.counting.set(key, (this.counting.get(key) ?? 0) + 1);
        }
        this.done.push(key);
      }
      this.latest.clear();
      this.report();
      this.drawMs += performance.now() - t0;
    });
  }

  /** Draws `peer`'s `kind` track with `sink` until the returned function is called. */
  attach(key: string, sink: Sink): () => void {
    this.start();
    this.sinks.set(key, sink);
    return () => {
      if (this.sinks.get(key) === sink) this.sinks.delete(key);
    };
  }
}

export const video = new VideoHub();
