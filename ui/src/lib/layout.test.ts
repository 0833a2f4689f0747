import { describe, expect, it } from "vitest";
import { fitGrid } from "./layout";

describe("the meeting grid", () => {
  it("gives a lone tile the whole height of a wide area, centred, no strip of it unused", () => {
    // 1200×600: 16:9 at full height is 1066 wide; the width cannot win.
    expect(fitGrid(1, 1200, 600, 10)).toEqual({ columns: 1, width: 1066 });
    // A tall area: the width is the limit.
    expect(fitGrid(1, 600, 900, 10)).toEqual({ columns: 1, width: 600 });
  });

  it("puts two side by side in a wide window and one above the other in a tall one", () => {
    expect(fitGrid(2, 1200, 600, 10).columns).toBe(2);
    expect(fitGrid(2, 600, 1000, 10).columns).toBe(1);
  });

  it("fills 1 to 4 tiles as fully as any other column count would", () => {
    const areas: [number, number][] = [[1280, 640], [900, 700], [700, 900]];
    const gap = 8;
    for (const [w, h] of areas) {
      for (let n = 1; n <= 4; n++) {
        const fit = fitGrid(n, w, h, gap);
        const rows = Math.ceil(n / fit.columns);
        // It fits...
        expect(fit.columns * fit.width + (fit.columns - 1) * gap).toBeLessThanOrEqual(w);
        expect((rows * fit.width * 9) / 16 + (rows - 1) * gap).toBeLessThanOrEqual(h + 1);
        // ...and no other column count gives larger tiles.
        for (let c = 1; c <= n; c++) {
          const r = Math.ceil(n / c);
          const other = Math.min((w - gap * (c - 1)) / c, ((h - gap * (r - 1)) / r) * (16 / 9));
          expect(fit.width).toBeGreaterThanOrEqual(Math.floor(other));
        }
      }
    }
  });
});
