/** "Today, 14:05", "Yesterday, 09:30" or "Mon 3 Nov, 09:30". */
export function when(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diff = Math.round((day(now) - day(d)) / 86_400_000);
  if (diff === 0) return `Today, ${time}`;
  if (diff === 1) return `Yesterday, ${time}`;
  return `${d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" })}, ${time}`;
}

/**
 * The invite link for a meeting on `server`: `https://server/j/CODE`, a page that opens
 * Parley where it is installed and says where to get it otherwise.
 */
export function inviteLink(server: string, code: string): string {
  return `${server.trim().replace(/\/+$/, "")}/j/${code}`;
}

/**
 * Accepts a code typed or pasted in any form, or an invite link (`https://…/j/CODE`,
 * `parley://join/CODE`, with or without a query); returns abcd-efgh-jkmn.
 */
export function normalizeCode(input: string): string | null {
  const link = /(?:\/j\/|^parley:\/\/join\/)([^/?#]+)(?:[?#].*)?$/i.exec(input.trim());
  const fromLink = link?.[1] ?? input.trim();
  const letters = fromLink.toLowerCase().replace(/[^a-z]/g, "");
  if (letters.length !== 12) return null;
  return `${letters.slice(0, 4)}-${letters.slice(4, 8)}-${letters.slice(8)}`;
}
