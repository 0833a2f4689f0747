// Vite's `?raw` imports (a file's text), used by tests that check the UI against the server's sources.
declare module "*?raw" {
  const text: string;
  export default text;
}
