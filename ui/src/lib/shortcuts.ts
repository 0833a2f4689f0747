// The meeting's keyboard shortcuts: Alt (Option on a Mac) with a letter, as in other meeting
// apps. Told apart by the letter the key types where that is a plain letter (so a French
// AZERTY keyboard's A is A), else by the physical key: on a Mac, Option+A types "å", and
// e.key is then no letter at all.

export type Action = "mic" | "camera" | "share" | "hand" | "chat" | "people" | "leave";

const LETTERS: Record<string, Action> = {
  a: "mic", v: "camera", s: "share", y: "hand", h: "chat", u: "people", q: "leave",
};

const LETTER_OF: Record<Action, string> = {
  mic: "A", camera: "V", share: "S", hand: "Y", chat: "H", people: "U", leave: "Q",
};

export interface KeyPress {
  key: string;
  code: string;
  altKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
}

/** The action a key press asks for, if it is one of the meeting's shortcuts. */
export function shortcutFor(e: KeyPress): Action | null {
  if (!e.altKey || e.ctrlKey || e.metaKey) return null;
  const typed = e.key.length === 1 && /^[a-z]$/i.test(e.key) ? e.key.toLowerCase() : null;
  const physical = /^Key([A-Z])$/.exec(e.code)?.[1]?.toLowerCase() ?? null;
  const letter = typed ?? physical;
  return letter ? (LETTERS[letter] ?? null) : null;
}

export type Platform = "mac" | "other";

/** Which system's key names to show. */
export function platformOf(nav: { platform?: string; userAgent: string }): Platform {
  return /Mac|iPhone|iPad/.test(nav.platform || nav.userAgent) ? "mac" : "other";
}

/** The shortcut as the system names it: "Alt+A" on Windows and Linux, "⌥A" on a Mac. */
export function shortcutLabel(action: Action, platform: Platform): string {
  return platform === "mac" ? `⌥${LETTER_OF[action]}` : `Alt+${LETTER_OF[action]}`;
}

/** The global mute shortcut (Tauri's CommandOrControl+Shift+M) as the system names it. */
export function muteShortcutLabel(platform: Platform): string {
  return platform === "mac" ? "⌘⇧M" : "Ctrl+Shift+M";
}
