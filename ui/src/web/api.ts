// The few REST calls the browser client makes, to its own origin. Tokens stay in memory.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  let r: Response;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit" });
  } catch {
    throw new ApiError(0, "unreachable", "Parley's server cannot be reached. Check your connection.");
  }
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say: said by its status below.
  }
  if (!r.ok) throw apiError(r.status, json);
  return json as T;
}

/** The error a refused request means to the person: the server's stable code, a friendly text. */
export function apiError(status: number, body: unknown): ApiError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === "string" ? e.code : "error";
  const message = typeof e?.message === "string" && e.message ? e.message : null;
  return new ApiError(status, code, FRIENDLY[code] ?? message ?? `The server answered ${status}.`);
}

/** What people read for the refusals a guest meets (the server's messages are terse). */
export const FRIENDLY: Record<string, string> = {
  guests_not_allowed: "The host has not opened this meeting to guests. Sign in with your account to join.",
  guest_removed:
    "A host removed a guest from this meeting who joined from this network. Ask the host to let you in, or sign in with your account.",
  guest_link_invalid: "This personal link is not one of this meeting's. Check the link you were sent.",
  guest_link_revoked: "The host has withdrawn this personal link.",
  guest_link_expired: "This personal link has expired. Ask the host for a new one.",
  guest_link_used: "This personal link was for one entry and has been used. Ask the host for a new one.",
  too_many_guests:
    "As many guests from this network as allowed are in this meeting already. Sign in with your account, or ask the host for a personal link.",
  name_taken: "Someone in this meeting already has a name like that. Choose another name so nobody mistakes you for them.",
  meeting_not_found: "No meeting has this code. Check the link you were sent.",
  meeting_ended: "This meeting has ended.",
  meeting_locked: "The host has locked this meeting: nobody new can join.",
  passcode_required: "This meeting has a passcode. Enter it to join.",
  wrong_passcode: "That passcode is not right.",
  invalid_passcode: "That passcode is not right.",
  invalid_display_name: "Enter the name others will see (up to 64 characters).",
  meeting_full: "This meeting is full.",
  guest_not_allowed: "A guest cannot do this. Sign in with your account.",
  rate_limited: "Too many tries from here. Wait a minute, then try again.",
  invalid_credentials: "That username or password is not right.",
};

export interface Tokens {
  access_token: string;
  refresh_token: string;
}

export interface GuestEntry {
  tokens: Tokens;
  user_id: string;
  display_name: string;
  code: string;
  title: string;
}

export function enterAsGuest(code: string, name: string, passcode: string | null, linkToken: string | null) {
  return call<GuestEntry>("POST", "/api/guests", {
    code,
    display_name: name,
    passcode: passcode || null,
    link_token: linkToken,
  });
}

export interface Login {
  user: { id: string; username: string; display_name?: string };
  tokens: Tokens;
}

export function signIn(login: string, password: string) {
  return call<Login>("POST", "/api/auth/login", { login, password });
}

export interface Meeting {
  code: string;
  title: string;
}

export function joinAsUser(code: string, passcode: string | null, token: string) {
  return call<{ meeting: Meeting } & Record<string, unknown>>(
    "POST",
    `/api/meetings/${encodeURIComponent(code)}/join`,
    { passcode: passcode || null },
    token,
  );
}
