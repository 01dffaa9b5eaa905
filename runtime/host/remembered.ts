/**
 * Idempotent calls: an actor remembers the idempotency keys of its recent
 * state-changing calls, with their replies, in its own state record — written
 * by the same compare-and-set write as the change itself. A call that comes
 * again with a remembered key is answered with the remembered reply and not
 * run again: after a node failover (the record moves with the actor), after
 * an upgrade (the remembered calls are carried beside the state, untouched by
 * transform functions), and when the first attempt's outcome was unknown.
 *
 * Only calls that changed the actor are remembered: a call that changed
 * nothing may run again without harm, and remembering it would cost a write.
 * Entries are kept for `windowMs` and at most `limit` per actor, newest kept.
 *
 * @module
 */
import { isPlainJson } from '../wire/codec.ts';

/** One remembered call, as stored in the actor's record (`ik` field). */
export interface RememberedCall {
  /** The idempotency key. */
  k: string;
  /** When it was applied (wall clock, ms). */
  at: number;
  /** Its reply. */
  r: unknown;
}

/** How long and how many calls an actor remembers. */
export interface RememberOptions {
  windowMs: number;
  limit: number;
}

export const DEFAULT_REMEMBER: RememberOptions = { windowMs: 10 * 60_000, limit: 64 };

/**
 * Each remembered call's JSON text, made once: an actor writes all of its
 * remembered calls with every change, and encoding them again each time
 * would cost more than the change itself. Null for a call whose reply is not
 * plain JSON (the record is then encoded whole).
 */
const jsonTexts = new WeakMap<RememberedCall, string | null>();

function jsonTextOf(entry: RememberedCall): string | null {
  let text = jsonTexts.get(entry);
  if (text === undefined) {
    // The same text JSON.stringify gives the entry, fields in the same order.
    text = isPlainJson(entry.r) && isPlainJson(entry.at) ? `{"k":${JSON.stringify(entry.k)},"at":${JSON.stringify(entry.at)},"r":${JSON.stringify(entry.r)}}` : null;
    jsonTexts.set(entry, text);
  }
  return text;
}

/** The JSON text of `entries` (an array), or undefined if one of them is not plain JSON. */
export function rememberedJson(entries: readonly RememberedCall[]): string | undefined {
  let out = '[';
  for (let i = 0; i < entries.length; i++) {
    const text = jsonTextOf(entries[i]!);
    if (text === null) return undefined;
    out += i === 0 ? text : `,${text}`;
  }
  return `${out}]`;
}

/** The remembered calls of one actor: those stored, and those of a batch not yet stored. */
export class RememberedCalls {
  private stored = new Map<string, RememberedCall>();
  private staged = new Map<string, RememberedCall>();

  constructor(private readonly options: RememberOptions) {}

  /** Replaces what is remembered with what a record holds (anything malformed is ignored). */
  load(entries: unknown): void {
    this.stored = new Map();
    this.staged = new Map();
    if (!Array.isArray(entries)) return;
    for (const e of entries as Array<Partial<RememberedCall>>) {
      if (e && typeof e.k === 'string' && typeof e.at === 'number') this.stored.set(e.k, { k: e.k, at: e.at, r: e.r });
    }
  }

  /** The reply of a remembered (or staged) call with this key. */
  find(key: string): { reply: unknown } | undefined {
    const hit = this.staged.get(key) ?? this.stored.get(key);
    return hit ? { reply: hit.r } : undefined;
  }

  /** Notes a call of the batch being run that changed the actor. */
  stage(key: string, reply: unknown, now: number): void {
    this.staged.set(key, { k: key, at: now, r: reply });
  }

  get hasStaged(): boolean {
    return this.staged.size > 0;
  }

  /** Forgets the calls of a batch that was not stored (it will run again). */
  discardStaged(): void {
    if (this.staged.size > 0) this.staged = new Map();
  }

  /**
   * The entries to write with the batch's state: stored and staged, without
   * those older than the window, the newest `limit` of them. Undefined if none.
   */
  toRecord(now: number): RememberedCall[] | undefined {
    if (this.stored.size === 0 && this.staged.size === 0) return undefined;
    const cutoff = now - this.options.windowMs;
    const all: RememberedCall[] = [];
    for (const e of this.stored.values()) if (e.at >= cutoff && !this.staged.has(e.k)) all.push(e);
    for (const e of this.staged.values()) all.push(e);
    const kept = all.length > this.options.limit ? all.slice(all.length - this.options.limit) : all;
    return kept.length > 0 ? kept : undefined;
  }

  /** The batch's write was stored: its calls are remembered from now on. */
  commit(written: RememberedCall[] | undefined): void {
    const stored = new Map<string, RememberedCall>();
    if (written) for (const e of written) stored.set(e.k, e);
    this.stored = stored;
    if (this.staged.size > 0) this.staged = new Map();
  }
}
