import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The browser client: the same UI with the browser's WebRTC (src/web/), built into
// `dist-web/` and embedded in parley-server (server/build.rs), which serves it at /web/.
// File names carry content hashes, so the server caches them for a year.
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  base: "/web/",
  build: {
    target: ["chrome111", "firefox115", "safari16"],
    outDir: "dist-web",
    emptyOutDir: true,
    rollupOptions: { input: "web.html" },
    // The policy allows scripts from files only: no inlined module preload helper.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
