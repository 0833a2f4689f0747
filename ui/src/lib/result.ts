import type { AppError } from "../bindings";

/** What every generated command returns. */
export type CommandResult<T> = { status: "ok"; data: T } | { status: "error"; error: AppError };

/** Thrown by `unwrap` so screens can `try`/`catch` and show `message`. */
export class CommandError extends Error {
  readonly code: string;
  constructor(e: AppError) {
    super(e.message);
    this.code = e.code;
  }
}

export async function unwrap<T>(p: Promise<CommandResult<T>>): Promise<T> {
  const r = await p;
  if (r.status === "error") throw new CommandError(r.error);
  return r.data;
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
