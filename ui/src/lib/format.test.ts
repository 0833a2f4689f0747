import { describe, expect, it } from "vitest";
import { inviteLink, normalizeCode } from "./format";

describe("invite links", () => {
  it("are https links to the server's invite page", () => {
    expect(inviteLink("https://meet.example.org", "bcdf-ghjk-mnpq")).toBe("https://meet.example.org/j/bcdf-ghjk-mnpq");
    expect(inviteLink("http://127.0.0.1:8080/ ", "bcdf-ghjk-mnpq")).toBe("http://127.0.0.1:8080/j/bcdf-ghjk-mnpq");
  });

  it("and every older or pasted form give the code back", () => {
    for (const pasted of [
      "https://meet.example.org/j/bcdf-ghjk-mnpq",
      "https://meet.example.org/j/bcdf-ghjk-mnpq?g=personal-token",
      "  http://127.0.0.1:8080/j/BCDFGHJKMNPQ#x ",
      "parley://join/bcdf-ghjk-mnpq",
      "bcdf ghjk mnpq",
      "BCDFGHJKMNPQ",
    ]) {
      expect(normalizeCode(pasted), pasted).toBe("bcdf-ghjk-mnpq");
    }
    expect(normalizeCode("https://meet.example.org/j/")).toBeNull();
    expect(normalizeCode("https://meet.example.org/about")).toBeNull();
  });
});
