/**
 * Records are immutable by contract (readonly types); in development builds and tests they
 * are also frozen, so code that mutates a record in place fails loudly at the mutation instead
 * of silently corrupting undo history. Production skips the walk: it costs time per put and
 * the type system already forbids the writes.
 */

const FREEZE_RECORDS: boolean = import.meta.env.DEV;

export function freezeInDev<T>(value: T): T {
  if (FREEZE_RECORDS) deepFreeze(value);
  return value;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}
