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
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, json?.code ?? "error", json?.message ?? `HTTP ${r.status}`);
  return json as T;
}

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
