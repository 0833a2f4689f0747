import { describe, expect, it } from "vitest";
import { muteShortcutLabel, platformOf, shortcutFor, shortcutLabel, type KeyPress } from "./shortcuts";

const press = (key: string, code: string, mods: Partial<KeyPress> = {}): KeyPress => ({
  key, code, altKey: true, ctrlKey: false, metaKey: false, ...mods,
});

describe("meeting shortcuts", () => {
  it("Alt with a letter, on Windows and Linux", () => {
    expect(shortcutFor(press("a", "KeyA"))).toBe("mic");
    expect(shortcutFor(press("v", "KeyV"))).toBe("camera");
    expect(shortcutFor(press("S", "KeyS"))).toBe("share");
    expect(shortcutFor(press("q", "KeyQ"))).toBe("leave");
  });

  it("Option with a letter on a Mac, which types another character", () => {
    // What macOS reports for Option+A, V, S, Y, H, U, Q on a US layout.
    const mac: [string, string, string][] = [
      ["å", "KeyA", "mic"], ["√", "KeyV", "camera"], ["ß", "KeyS", "share"],
      ["¥", "KeyY", "hand"], ["˙", "KeyH", "chat"], ["Dead", "KeyU", "people"],
      ["œ", "KeyQ", "leave"],
    ];
    for (const [key, code, action] of mac) expect(shortcutFor(press(key, code))).toBe(action);
  });

  it("the letter typed wins over the key's place (AZERTY's A sits where QWERTY has Q)", () => {
    expect(shortcutFor(press("a", "KeyQ"))).toBe("mic");
    expect(shortcutFor(press("q", "KeyA"))).toBe("leave");
  });

  it("nothing without Alt, with Ctrl or Cmd, or for other keys", () => {
    expect(shortcutFor(press("a", "KeyA", { altKey: false }))).toBeNull();
    expect(shortcutFor(press("a", "KeyA", { ctrlKey: true }))).toBeNull();
    expect(shortcutFor(press("a", "KeyA", { metaKey: true }))).toBeNull();
    expect(shortcutFor(press("b", "KeyB"))).toBeNull();
    expect(shortcutFor(press("1", "Digit1"))).toBeNull();
  });

  it("names the keys as each system does", () => {
    const mac = platformOf({ platform: "MacIntel", userAgent: "" });
    const win = platformOf({ platform: "Win32", userAgent: "" });
    const linux = platformOf({ platform: "", userAgent: "Mozilla/5.0 (X11; Linux x86_64)" });
    expect([mac, win, linux]).toEqual(["mac", "other", "other"]);
    expect(shortcutLabel("mic", mac)).toBe("⌥A");
    expect(shortcutLabel("mic", win)).toBe("Alt+A");
    expect(muteShortcutLabel(mac)).toBe("⌘⇧M");
    expect(muteShortcutLabel(linux)).toBe("Ctrl+Shift+M");
  });
});
