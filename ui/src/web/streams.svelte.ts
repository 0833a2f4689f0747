// The browser's video: a MediaStream per tile key (`peer/kind`, lib/video.ts), drawn by a
// <video> element in Tile.svelte. The desktop app never fills it (its frames come from Rust).

import { SvelteMap } from "svelte/reactivity";

class Streams {
  private map = new SvelteMap<string, MediaStream>();

  get(key: string): MediaStream | null {
    return this.map.get(key) ?? null;
  }

  set(key: string, stream: MediaStream | null) {
    if (stream) this.map.set(key, stream);
    else this.map.delete(key);
  }

  clear() {
    this.map.clear();
  }
}

export const streams = new Streams();
