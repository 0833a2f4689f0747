// What the meeting screen asks of whoever runs the call: the desktop app's Rust engine
// (Tauri commands) or the browser's own WebRTC (web/call.svelte.ts). Each method throws a
// CommandError-like value the screens show (lib/result.ts).

import { commands, type HostActionArg } from "../bindings";
import { unwrap } from "./result";

export interface Backend {
  /** "desktop": native devices, the share picker, device settings; "browser": the page's. */
  kind: "desktop" | "browser";
  setMic(on: boolean): Promise<unknown>;
  setCamera(on: boolean): Promise<unknown>;
  raiseHand(up: boolean): Promise<unknown>;
  react(emoji: string): Promise<unknown>;
  /** Browser only: asks the browser for a screen, window or tab (its own picker). */
  startShare(): Promise<unknown>;
  stopShare(): Promise<unknown>;
  sendChat(text: string): Promise<unknown>;
  hostAction(action: HostActionArg, peer: string | null): Promise<unknown>;
  leave(): Promise<unknown>;
}

export const desktop: Backend = {
  kind: "desktop",
  setMic: (on) => unwrap(commands.setMic(on)),
  setCamera: (on) => unwrap(commands.setCamera(on)),
  raiseHand: (up) => unwrap(commands.raiseHand(up)),
  react: (emoji) => unwrap(commands.react(emoji)),
  startShare: () => Promise.reject(new Error("pick a screen first")),
  stopShare: () => unwrap(commands.stopShare()),
  sendChat: (text) => unwrap(commands.sendChat(text)),
  hostAction: (action, peer) => unwrap(commands.hostAction(action, peer)),
  leave: () => commands.leaveMeeting(),
};

let current: Backend = desktop;

/** The backend of this build (the browser entry installs its own before mounting). */
export function backend(): Backend {
  return current;
}

export function useBackend(b: Backend) {
  current = b;
}
