// The browser call's decisions that need no browser: which line carries what, how long to
// wait before reconnecting, the wire form of ICE candidates, how chat merges, what the invite
// page hands over. Pure functions, so Vitest checks them (logic.test.ts); call.svelte.ts and
// WebApp.svelte apply them to the real RTCPeerConnection, socket and page.

import type { ChatItem } from "../lib/room.svelte";

export type Kind = "audio" | "camera" | "screen";
export const KINDS: Kind[] = ["audio", "camera", "screen"];

/**
 * What each negotiated line carries, from the lines' media kinds in SDP order (never from
 * track or stream ids, which other stacks choose freely): the first audio line is the
 * microphone, the first video line the camera, the second the screen; any further line is
 * not ours (null).
 */
export function lineKinds(media: string[]): (Kind | null)[] {
  let audio = 0;
  let video = 0;
  return media.map((m) => {
    if (m === "audio") return audio++ === 0 ? "audio" : null;
    if (m === "video") {
      const n = video++;
      return n === 0 ? "camera" : n === 1 ? "screen" : null;
    }
    return null;
  });
}

/** Milliseconds before reconnect attempt `attempt` (0-based): doubling from 0.5 s, at most 8 s. */
export function reconnectDelay(attempt: number): number {
  return Math.min(8000, 500 * 2 ** Math.max(0, Math.min(attempt, 16)));
}

/** An ICE candidate as Parley's signaling carries it (shared/src/signal.rs `IceCandidate`). */
export interface WireCandidate {
  candidate: string;
  sdp_mid?: string | null;
  sdp_mline_index?: number | null;
  username_fragment?: string | null;
}

export function candidateToWire(c: {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}): WireCandidate {
  return {
    candidate: c.candidate,
    sdp_mid: c.sdpMid ?? null,
    sdp_mline_index: c.sdpMLineIndex ?? null,
    username_fragment: c.usernameFragment ?? null,
  };
}

export function candidateFromWire(w: WireCandidate): RTCIceCandidateInit {
  return {
    candidate: w.candidate,
    sdpMid: w.sdp_mid ?? null,
    sdpMLineIndex: w.sdp_mline_index ?? null,
    usernameFragment: w.username_fragment ?? null,
  };
}

/** A chat line as the meeting screen lists it. */
export type ChatLine = ChatItem;

/**
 * The chat list with `line` in it: a line sent by us (same key) or already known (same
 * stored id: history sent again after a reconnect) is replaced in place, keeping the time it
 * was first shown; a new one is added in time order. `added` says whether it is new.
 */
export function mergeChat(list: ChatLine[], line: ChatLine): { list: ChatLine[]; added: boolean } {
  const i = list.findIndex((c) => c.key === line.key || (!line.pending && c.id === line.id));
  if (i >= 0) {
    const next = list.slice();
    next[i] = { ...line, at_ms: list[i]!.at_ms };
    return { list: next, added: false };
  }
  return { list: [...list, line].sort((a, b) => a.at_ms - b.at_ms), added: true };
}

/**
 * What the invite page hands over in the fragment (`#code=…&g=…`): the code and a personal
 * link's token. The page then takes the fragment out of the address bar.
 */
export function readInvite(hash: string): { code: string | null; linkToken: string | null; passcode: boolean } {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  const code = p.get("code")?.trim() || null;
  const linkToken = p.get("g")?.trim() || null;
  // The invite page says whether the meeting has a passcode (`p=1`); otherwise the form asks
  // for one only when the server does.
  const passcode = p.get("p") === "1";
  return { code, linkToken, passcode };
}

/** The level of a block of samples in dBFS, floored at -100. */
export function dbfs(samples: ArrayLike<number>): number {
  if (samples.length === 0) return -100;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  const rms = Math.sqrt(sum / samples.length);
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}

/** The loudest peer above the speaking threshold (-50 dBFS), or null when nobody speaks. */
export function loudest(levels: Record<string, number>, threshold = -50): string | null {
  let best: [string, number] | null = null;
  for (const [id, d] of Object.entries(levels)) if (d > threshold && (!best || d > best[1])) best = [id, d];
  return best?.[0] ?? null;
}
