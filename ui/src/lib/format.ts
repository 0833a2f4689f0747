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

/** The link that opens a meeting in Parley (`parley://join/CODE`). */
export function inviteLink(code: string): string {
  return `parley://join/${code}`;
}

/** Accepts a code typed or pasted in any form, or an invite link; returns abcd-efgh-jkmn. */
export function normalizeCode(input: string): string | null {
  const fromLink = input.trim().replace(/^parley:\/\/join\//i, "");
  const letters = fromLink.toLowerCase().replace(/[^a-z]/g, "");
  if (letters.length !== 12) return null;
  return `${letters.slice(0, 4)}-${letters.slice(4, 8)}-${letters.slice(8)}`;
}
