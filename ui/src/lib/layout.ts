// The meeting grid: how many columns, and how wide each tile, so that n tiles of one aspect
// ratio fill the area as fully as they can (the largest tiles that fit), centred, with no
// strip of dead space beside a lone tile.

export interface GridFit {
  columns: number;
  /** Each tile's width in CSS pixels (its height follows from the aspect ratio). */
  width: number;
}

export function fitGrid(n: number, width: number, height: number, gap: number, aspect = 16 / 9): GridFit {
  let best: GridFit = { columns: 1, width: 0 };
  if (n <= 0 || width <= 0 || height <= 0) return best;
  for (let columns = 1; columns <= n; columns++) {
    const rows = Math.ceil(n / columns);
    const w = Math.min((width - gap * (columns - 1)) / columns, ((height - gap * (rows - 1)) / rows) * aspect);
    if (w > best.width) best = { columns, width: Math.floor(w) };
  }
  return best;
}
