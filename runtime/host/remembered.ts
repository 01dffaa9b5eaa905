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
 * Most writes carry only the newest calls: once {@link CHECKPOINT_EVERY}
 * calls have been written since, the calls already stored are written to a
 * second record, the actor's checkpoint (KV key {@link checkpointKey}, with
 * compare-and-set on its own revision), and the state record written after it
 * holds only the calls since, and names the checkpoint (`ikx`). Both records
 * are written before the calls they hold are answered, so a call acknowledged
 * is in one of them; a node loads the state record first, then the
 * checkpoint it names (or a later one, which holds at least as much).
 *
 * Forgetting is tracked too: the record keeps the time of the newest entry
 * dropped for the `limit` (its "floor"). A resend says how long ago its first
 * attempt was sent; if that attempt may be older than the floor (or than the
 * window), the actor cannot tell whether it was applied, and says so rather
 * than run it a second time.
 *
 * @module
 */
import { isPlainJson, type Codec } from '../wire/codec.ts';

/** One remembered call (in the actor's record: compact in `ikc`, or as this object in `ik`). */
export interface RememberedCall {
  /** The idempotency key. */
  k: string;
  /** When it was applied (wall clock, ms). */
  at: number;
  /** Its reply. */
  r: unknown;
}

/** What an actor's record holds of its remembered calls. */
export interface RememberedRecord {
  /** The remembered calls, oldest first. */
  ik: RememberedCall[];
  /** When the newest call dropped for the limit was applied (wall clock, ms), if any was. */
  ikf?: number;
  /**
   * The revision of the checkpoint that holds the calls before the newest
   * `held` (set only when the state record does not hold them all).
   */
  ikr?: number;
  /** With `ikr`: how many of the newest calls the state record holds. */
  held?: number;
}

/** The KV key of an actor's checkpoint of remembered calls (beside `<type>.<key>`; a type name never starts with `_`). */
export function checkpointKey(storeKey: string): string {
  return `_ik.${storeKey}`;
}

/**
 * How many calls a state record holds, at most, beyond its checkpoint: when
 * a write would hold this many, the calls already stored go to the
 * checkpoint first. Every write then carries 1–16 calls instead of up to the
 * limit (64), and one write in 16 adds a write of the checkpoint
 * (docs/performance.md, "Idempotent calls").
 */
export const CHECKPOINT_EVERY = 16;

export const DEFAULT_REMEMBER: RememberOptions = { windowMs: 10 * 60_000, limit: 64 };

/** How long and how many calls an actor remembers, and how many its state record holds beyond its checkpoint. */
export interface RememberOptions {
  windowMs: number;
  limit: number;
  /** Default {@link CHECKPOINT_EVERY}; 0: no checkpoint (every write holds every call). */
  checkpointEvery?: number;
}

/**
 * How far apart two nodes' wall clocks (plus a resend's transit) may be for the
 * forgetting check to hold: a first attempt is taken to be this much older
 * than its resend says. Small on purpose: an actor that drops keys for its
 * limit faster than `limit` per margin (640 keyed changes a second at the
 * default 64) would otherwise answer every resend "forgotten".
 */
export const CLOCK_MARGIN_MS = 100;

/**
 * The compact form of an actor's remembered calls (record field `ikc`),
 * written instead of the list of `{ k, at, r }` objects (`ik`) whenever it can
 * hold them: every write of the actor carries all of them, and what a write
 * costs follows its bytes (docs/performance.md).
 *
 * `ikc` is one JSON array: the floor (or null), then one `[p, s, d, r]` per
 * call, oldest first (`[p, s, d]` for a call without a reply, a tell). The
 * call's key is the first `p` characters of the previous call's key followed
 * by `s` (the default keys of one client share a 12-character prefix); its
 * time is the previous call's plus `d` (the first call's `d` is its time); `r`
 * is its reply. About 17 bytes a call instead of 52 for the default keys. It needs replies that are plain JSON (or none) and
 * times that are safe integers (the wall clock's milliseconds); otherwise the
 * record keeps the `ik` form.
 *
 * Each call's text depends on its predecessor only, so a write reuses the
 * text of the previous one ({@link CompactCache}): the calls it kept are
 * joined as they were, only the new oldest call and the new calls are made.
 */

/** A call's text in the compact form, relative to `prev` (none: absolute); null if the form cannot hold it. */
function compactText(entry: RememberedCall, prev: RememberedCall | undefined): string | null {
  if (!Number.isSafeInteger(entry.at)) return null;
  // No reply (a tell's): the call has three items, not four.
  let reply = '';
  if (entry.r !== undefined) {
    if (!isPlainJson(entry.r)) return null;
    reply = `,${JSON.stringify(entry.r)}`;
  }
  if (prev === undefined) return `[0,${JSON.stringify(entry.k)},${entry.at}${reply}]`;
  // Safe integers both: the difference is exact when it is a safe integer itself.
  const d = entry.at - prev.at;
  if (!Number.isSafeInteger(d)) return null;
  const max = Math.min(entry.k.length, prev.k.length);
  let p = 0;
  while (p < max && entry.k.charCodeAt(p) === prev.k.charCodeAt(p)) p++;
  return `[${p},${JSON.stringify(p === 0 ? entry.k : entry.k.slice(p))},${d}${reply}]`;
}

/**
 * The compact text of the calls last encoded, to be reused by the next write:
 * a pure function of the calls (by identity), so whether that write was
 * stored does not matter. The text is kept as UTF-8 bytes in one buffer that
 * the next write extends at its end and trims at its start, so a write makes
 * the text of its new calls only, and the record is written from these bytes
 * without joining strings (see {@link RememberedCalls.encodeRecord}).
 */
export class CompactCache {
  /** The calls last encoded, oldest first (a copy: the lists given are not kept). */
  private entries: RememberedCall[] = [];
  /** Each call's text, each preceded by a comma, as UTF-8 in `bytes[start…end)`. */
  private bytes: Buffer = Buffer.allocUnsafe(0);
  private start = 0;
  private end = 0;
  /** The length in bytes of each call's part of the text. */
  private lengths: number[] = [];

  /**
   * The JSON text of the compact form (`ikc`) of the calls `ik[from…]` with
   * the floor `ikf`, or undefined if it cannot hold them (then the record
   * takes the `ik` form).
   */
  json(ik: readonly RememberedCall[], from: number, ikf: number | undefined): string | undefined {
    const calls = this.calls(ik, from, ikf);
    return calls === undefined ? undefined : `${calls.head}${this.bytes.toString('utf8', this.start, this.end)}]`;
  }

  /**
   * The compact form of `ik[from…]` with the floor `ikf`, in parts: its JSON
   * text is `head` (`[` and the floor), then the UTF-8 bytes `text` (valid
   * until the next use of this cache), then `]`. Undefined if the form cannot hold them.
   */
  calls(ik: readonly RememberedCall[], from: number, ikf: number | undefined): { head: string; text: Uint8Array } | undefined {
    if (ikf !== undefined && !Number.isSafeInteger(ikf)) return undefined;
    const made = this.reuse(ik, from) ?? (this.clear(), this.append(ik, from));
    if (!made) {
      this.clear();
      return undefined;
    }
    return { head: ikf === undefined ? '[null' : `[${ikf}`, text: this.bytes.subarray(this.start, this.end) };
  }

  private clear(): void {
    this.entries = [];
    this.start = this.end = 0;
    this.lengths = [];
  }

  /**
   * Makes the text of `ik[from…]` from that of the calls last encoded, if
   * they are some of those (from the first kept on) then new ones: true if
   * made, false if a call cannot be written, undefined if the text cannot be
   * reused (then nothing was changed).
   */
  private reuse(ik: readonly RememberedCall[], from: number): boolean | undefined {
    const last = this.entries;
    const count = ik.length - from;
    if (count <= 0 || last.length === 0) return undefined;
    // How many of the oldest calls last encoded were dropped (a window or limit trim, or a checkpoint, drops some).
    const dropped = last.indexOf(ik[from]!);
    if (dropped < 0) return undefined;
    const kept = last.length - dropped;
    if (kept > count) return undefined;
    for (let i = 1; i < kept; i++) if (last[dropped + i] !== ik[from + i]) return undefined;
    if (dropped > 0) {
      // The new oldest call was written relative to a call now dropped: write it whole, in place of the text before the next.
      const first = compactText(ik[from]!, undefined);
      if (first === null) return false;
      let freed = 0;
      for (let i = 0; i <= dropped; i++) freed += this.lengths[i]!;
      const length = 1 + Buffer.byteLength(first);
      const rest = this.start + freed;
      if (length <= rest) {
        this.start = rest - length;
        this.bytes[this.start] = 0x2c;
        this.bytes.write(first, this.start + 1);
      } else {
        // No room before the rest: a new buffer.
        const bytes = Buffer.allocUnsafe(Math.max(64, 2 * (length + this.end - rest)));
        bytes[0] = 0x2c;
        bytes.write(first, 1);
        this.bytes.copy(bytes, length, rest, this.end);
        this.end = length + this.end - rest;
        this.start = 0;
        this.bytes = bytes;
      }
      this.lengths.splice(0, dropped + 1, length);
      last.splice(0, dropped);
    }
    return this.append(ik, from + kept);
  }

  /** Adds the text of `ik[at…]` (the first of the range written whole if nothing precedes it); false if a call cannot be written. */
  private append(ik: readonly RememberedCall[], at: number): boolean {
    const { entries, lengths } = this;
    for (let i = at; i < ik.length; i++) {
      const t = compactText(ik[i]!, entries.length === 0 ? undefined : ik[i - 1]);
      if (t === null) return false;
      const length = 1 + Buffer.byteLength(t);
      this.reserve(length);
      this.bytes[this.end] = 0x2c;
      this.bytes.write(t, this.end + 1);
      this.end += length;
      lengths.push(length);
      entries.push(ik[i]!);
    }
    return true;
  }

  /** Room for `length` more bytes at the end: the text moved to the start of the buffer, or into a larger one. */
  private reserve(length: number): void {
    if (this.end + length <= this.bytes.length) return;
    const used = this.end - this.start;
    const target = used + length <= this.bytes.length >> 1 ? this.bytes : Buffer.allocUnsafe(Math.max(256, 2 * (used + length)));
    this.bytes.copy(target, 0, this.start, this.end);
    this.bytes = target;
    this.start = 0;
    this.end = used;
  }
}

/** The value of a compact form given in parts (see {@link CompactCache.calls}), for an encoder that cannot take its text. */
function compactValue(compact: { head: string; text: Uint8Array }): unknown {
  return JSON.parse(`${compact.head}${Buffer.from(compact.text).toString('utf8')}]`);
}

/** The JSON text of the compact form (`ikc`) of `remembered`, made from scratch (see {@link CompactCache}). */
export function compactRememberedJson(remembered: RememberedRecord): string | undefined {
  return new CompactCache().json(remembered.ik, 0, remembered.ikf);
}

/**
 * The floor a record in the compact form also carries as `ikf`, for readers
 * that know only the `ik` form (Molt before `ikc`, during a rolling update of
 * Molt itself): no later than the newest call, so that such a reader, finding
 * no calls it can read, answers every resend of one of them `OutcomeUnknown`
 * ({@link RememberedCalls.mayHaveForgotten}) — never runs it a second time.
 */
export function floorForOlderReaders(remembered: RememberedRecord): number | undefined {
  let floor = remembered.ikf;
  for (const e of remembered.ik) if (floor === undefined || e.at > floor) floor = e.at;
  return floor;
}

/** The calls and floor of a compact form (`ikc`); a malformed call ends the list (those after it cannot be read). */
export function readCompact(ikc: readonly unknown[]): { entries: RememberedCall[]; floor: number | undefined } {
  const floor = typeof ikc[0] === 'number' && Number.isFinite(ikc[0]) ? ikc[0] : undefined;
  const entries: RememberedCall[] = [];
  let prev: RememberedCall | undefined;
  for (let i = 1; i < ikc.length; i++) {
    const e = ikc[i];
    if (!Array.isArray(e) || (e.length !== 3 && e.length !== 4)) break;
    const [p, s, d] = e as [unknown, unknown, unknown];
    if (!Number.isSafeInteger(p) || (p as number) < 0 || (p as number) > (prev?.k.length ?? 0) || typeof s !== 'string' || typeof d !== 'number' || !Number.isFinite(d)) break;
    const k = (p as number) === 0 ? s : prev!.k.slice(0, p as number) + s;
    if (k.length === 0) break;
    prev = { k, at: prev === undefined ? d : prev.at + d, r: e[3] };
    entries.push(prev);
  }
  return { entries, floor };
}

/** The calls and floor a record holds, in either form (`ikc`, else `ik` and `ikf`); anything malformed is ignored. */
function readCalls(record: { ik?: unknown; ikf?: unknown; ikc?: unknown } | undefined): { entries: RememberedCall[]; floor: number | undefined } {
  // The compact form; its `ikf` is only for older readers (see floorForOlderReaders).
  if (Array.isArray(record?.ikc)) return readCompact(record.ikc);
  const floor = typeof record?.ikf === 'number' && Number.isFinite(record.ikf) ? record.ikf : undefined;
  const entries: RememberedCall[] = [];
  if (Array.isArray(record?.ik)) {
    for (const e of record.ik as Array<Partial<RememberedCall>>) {
      if (e && typeof e.k === 'string' && typeof e.at === 'number') entries.push({ k: e.k, at: e.at, r: e.r });
    }
  }
  return { entries, floor };
}

/** The checkpoint a state record names (`ikx`: its revision, and the floor of all the calls), if it names a valid one. */
function readCheckpointRef(ikx: unknown): { revision: number; floor: number | undefined } | undefined {
  if (!Array.isArray(ikx) || ikx.length !== 2) return undefined;
  const [revision, floor] = ikx as [unknown, unknown];
  if (!Number.isSafeInteger(revision) || (revision as number) < 1) return undefined;
  if (floor !== null && (typeof floor !== 'number' || !Number.isFinite(floor))) return undefined;
  return { revision: revision as number, floor: floor ?? undefined };
}

/** Whether a state record's own fields include one the remembered calls are written in (never, for a record `persist` gave). */
function hasRememberedField(record: object): boolean {
  return 'ikc' in record || 'ik' in record || 'ikf' in record || 'ikx' in record;
}

const maxFloor = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

/** Whether the calls' times never decrease, oldest first: as they are unless the wall clock stepped back. */
function inTimeOrder(calls: readonly RememberedCall[]): boolean {
  for (let i = 1; i < calls.length; i++) if (calls[i]!.at < calls[i - 1]!.at) return false;
  return true;
}

/** The remembered calls of one actor: those stored, and those of a batch not yet stored. */
export class RememberedCalls {
  /**
   * The stored calls, oldest first. A write's record holds this list (or a
   * copy), and {@link commit} takes the written list as the next one — so a
   * write costs what changed, not the whole list; such a list is never
   * changed in place.
   */
  private calls: readonly RememberedCall[] = [];
  /**
   * The list {@link absorbStaged} made and alone holds: while `calls` is
   * this one, a volatile actor's change extends and trims it in place.
   */
  private absorbed: RememberedCall[] | undefined;
  /** The stored calls by key. */
  private index = new Map<string, RememberedCall>();
  private staged = new Map<string, RememberedCall>();
  /**
   * What the last {@link toRecord} gave, when it is the stored calls after
   * the first `dropped` then the staged ones: so {@link commit} of that
   * record applies the change without comparing the lists.
   */
  private lastRecord: { ik: readonly RememberedCall[]; from: readonly RememberedCall[]; dropped: number } | undefined;
  private floor: number | undefined;
  /** Whether the stored calls are in time order ({@link inTimeOrder}). */
  private storedInOrder = true;
  /**
   * The list of the last record {@link toRecord} made, if its calls are in
   * time order: then the latest time among any first of them is the last
   * one's, and {@link encodeRecord} need not read every call's time. On a
   * busy node those calls are no longer in the CPU's caches: reading the 64
   * of each write stood out in CPU profiles of keyed durable writes.
   */
  private orderedList: readonly RememberedCall[] | undefined;
  private readonly compact = new CompactCache();
  private readonly checkpointCompact = new CompactCache();
  /** The revision of the actor's checkpoint as last read or written (0: none); undefined: not known. */
  private checkpointRevision: number | undefined;
  /** How many of the newest stored calls are not in that checkpoint. */
  private unchecked = 0;
  /** The checkpoint the loaded state record names, until it is read. */
  private named: { revision: number; floor: number | undefined } | undefined;

  constructor(private readonly options: RememberOptions) {}

  /**
   * The bytes of an actor's record: `record` (its state, as `persist` gives
   * it) with `remembered` (what {@link toRecord} gave for this write) — in the
   * compact form where it can hold them, its text reused from the previous
   * write and spliced into the record's; else in the `ik` form, the whole
   * record encoded by the codec. With a checkpoint (`ikr`), the record holds
   * only the newest `held` calls, names the checkpoint and the floor of all
   * the calls (`ikx`), and gives as its own floor one no earlier than the
   * newest call it leaves to the checkpoint: a reader that does not know
   * checkpoints answers a resend of one of those `OutcomeUnknown`, never runs it again.
   */
  encodeRecord(codec: Codec, record: object, remembered: RememberedRecord | undefined): Uint8Array {
    if (!remembered) return codec.encode(record);
    // A state's own field by a name the calls are written in (never, from `persist`) would stand beside them: left out.
    if (hasRememberedField(record)) {
      const { ik: _ik, ikc: _ikc, ikf: _ikf, ikx: _ikx, ...rest } = record as Record<string, unknown>;
      record = rest;
    }
    const { ik, ikf, ikr } = remembered;
    // The calls the state record holds: all, or the newest `held` beside a checkpoint.
    const from = ikr === undefined ? 0 : ik.length - (remembered.held ?? ik.length);
    // The latest time among the calls left to the checkpoint (the newest, unless the clock stepped back).
    const ordered = ik === this.orderedList;
    let ownFloor = ikf;
    if (ordered) ownFloor = from === 0 ? ikf : maxFloor(ikf, ik[from - 1]!.at);
    else for (let i = 0; i < from; i++) ownFloor = maxFloor(ownFloor, ik[i]!.at);
    const floor = ordered ? maxFloor(ikf, ik.length === 0 ? undefined : ik[ik.length - 1]!.at) : floorForOlderReaders(remembered);
    const compact = codec.encodeWithJsonFields ? this.compact.calls(ik, from, ownFloor) : undefined;
    if (compact !== undefined && (floor === undefined || Number.isFinite(floor)) && (ikf === undefined || Number.isFinite(ikf))) {
      // The fields after the state's own: no object copied, the calls' text neither made again nor joined.
      let fields = floor === undefined ? '' : `"ikf":${floor},`;
      if (ikr !== undefined) fields += `"ikx":[${ikr},${ikf ?? 'null'}],`;
      const bytes = codec.encodeWithJsonFields!(record, [`${fields}"ikc":${compact.head}`, compact.text, ']']);
      if (bytes !== undefined) return bytes;
    }
    // A state that needs superjson's meta (a Date, a Map), or calls the compact form cannot hold: encoded whole.
    const extra = ikr === undefined ? undefined : { ikx: [ikr, ikf ?? null] };
    if (compact !== undefined) {
      return codec.encode({ ...record, ...(floor === undefined ? {} : { ikf: floor }), ...extra, ikc: compactValue(compact) });
    }
    const own = from === 0 ? ik : ik.slice(from);
    return codec.encode({ ...record, ik: own, ...(ownFloor === undefined ? {} : { ikf: ownFloor }), ...extra });
  }

  /**
   * Replaces what is remembered with what a record holds, in either form
   * (`ikc`, else `ik` and `ikf`); anything malformed is ignored. Returns the
   * revision of the checkpoint the record names, if it names one: the caller
   * reads that record and gives it to {@link loadCheckpoint}.
   */
  load(record: { ik?: unknown; ikf?: unknown; ikc?: unknown; ikx?: unknown } | undefined): number | undefined {
    this.staged = new Map();
    const { entries, floor } = readCalls(record);
    this.floor = floor;
    this.setCalls(entries);
    this.checkpointRevision = undefined;
    this.unchecked = this.calls.length;
    this.named = readCheckpointRef(record?.ikx);
    return this.named?.revision;
  }

  /**
   * Adds the calls of the checkpoint the loaded record names: `checkpoint` is
   * that record, decoded (undefined: absent or unreadable), at `revision` (0:
   * none). A checkpoint older than the one named cannot be trusted to hold
   * the calls the state record left to it: then only the record's own floor
   * (no earlier than the newest of them) holds, and a resend of any of them
   * is answered `OutcomeUnknown`. Returns whether the checkpoint was used.
   */
  loadCheckpoint(checkpoint: { ik?: unknown; ikf?: unknown; ikc?: unknown } | undefined, revision: number): boolean {
    const named = this.named;
    this.named = undefined;
    this.checkpointRevision = revision;
    if (named === undefined || checkpoint === undefined || revision < named.revision) return false;
    const { entries, floor } = readCalls(checkpoint);
    const own = this.calls;
    this.setCalls([...entries, ...own]);
    this.floor = maxFloor(named.floor, floor);
    const excess = this.calls.length - this.options.limit;
    if (excess > 0) {
      for (let i = 0; i < excess; i++) this.floor = maxFloor(this.floor, this.calls[i]!.at);
      this.setCalls(this.calls.slice(excess));
    }
    this.unchecked = Math.min(own.length, this.calls.length);
    return true;
  }

  /** Makes `entries` the stored calls; a key that comes again keeps its last call, in that call's place. */
  private setCalls(entries: readonly RememberedCall[]): void {
    const index = new Map<string, RememberedCall>();
    for (const e of entries) {
      index.delete(e.k);
      index.set(e.k, e);
    }
    this.index = index;
    this.calls = index.size === entries.length ? entries : [...index.values()];
    this.storedInOrder = inTimeOrder(this.calls);
  }

  /**
   * Whether a staged call has the key of a stored one. It never should (a
   * remembered key is answered, not run again), so this is checked once per
   * staged call, and only then is the stored list filtered: a pass over every
   * stored call on each change was most of what remembering cost a volatile
   * actor.
   */
  private stagedReplacesStored(): boolean {
    for (const k of this.staged.keys()) if (this.index.has(k)) return true;
    return false;
  }

  /** The reply of a remembered (or staged) call with this key. */
  find(key: string): { reply: unknown } | undefined {
    const hit = (this.staged.size === 0 ? undefined : this.staged.get(key)) ?? this.index.get(key);
    return hit ? { reply: hit.r } : undefined;
  }

  /**
   * Whether a call not remembered, first sent `resendAgeMs` ago, may have been
   * applied and forgotten since: its first attempt may predate the window, or
   * the newest call dropped for the limit.
   */
  mayHaveForgotten(resendAgeMs: number, now: number): boolean {
    if (resendAgeMs + CLOCK_MARGIN_MS >= this.options.windowMs) return true;
    return this.floor !== undefined && now - resendAgeMs - CLOCK_MARGIN_MS <= this.floor;
  }

  /** What this actor keeps, for messages. */
  describe(): string {
    return `the last ${Math.round(this.options.windowMs / 1000)} s of keyed changes, at most ${this.options.limit}`;
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
    this.staged.clear();
  }

  /**
   * What to write with the batch's state: stored and staged entries without
   * those older than the window, the newest `limit` of them, and the floor
   * (raised by any entry dropped for the limit). Undefined if nothing. With
   * `ikr` and `held` when the checkpoint holds some of them.
   */
  toRecord(now: number): RememberedRecord | undefined {
    const cutoff = now - this.options.windowMs;
    const { calls } = this;
    // The calls older than the window, from the oldest on.
    let first = 0;
    while (first < calls.length && calls[first]!.at < cutoff) first++;
    let floor = this.floor !== undefined && this.floor >= cutoff ? this.floor : undefined;
    let kept: RememberedCall[];
    let ordered: boolean;
    const excess = calls.length - first + this.staged.size - this.options.limit;
    const replaces = this.stagedReplacesStored();
    // How many of the oldest stored calls this record leaves out, if it holds the others and then every staged one.
    let dropped: number | undefined;
    if (excess > 0 && excess <= calls.length - first && !replaces) {
      // The usual case once the actor holds its limit: the oldest stored calls dropped without copying them first.
      for (let i = first; i < first + excess; i++) floor = Math.max(floor ?? calls[i]!.at, calls[i]!.at);
      kept = calls.slice(first + excess);
      ordered = this.appendStaged(kept);
      dropped = first + excess;
    } else {
      kept = replaces ? calls.slice(first).filter((e) => !this.staged.has(e.k)) : calls.slice(first);
      ordered = this.appendStaged(kept);
      const over = kept.length - this.options.limit;
      if (over > 0) {
        for (let i = 0; i < over; i++) floor = Math.max(floor ?? kept[i]!.at, kept[i]!.at);
        kept.splice(0, over);
      }
      if (!replaces && over <= calls.length - first) dropped = first + Math.max(0, over);
    }
    this.lastRecord = dropped === undefined ? undefined : { ik: kept, from: calls, dropped };
    this.orderedList = ordered ? kept : undefined;
    if (kept.length === 0 && floor === undefined) return undefined;
    const record: RememberedRecord = floor === undefined ? { ik: kept } : { ik: kept, ikf: floor };
    // The calls not in the checkpoint: the newest stored ones it did not take, and the staged ones.
    const held = this.unchecked + this.staged.size;
    if (this.checkpointRevision !== undefined && this.checkpointRevision > 0 && held < kept.length) {
      record.ikr = this.checkpointRevision;
      record.held = held;
    }
    return record;
  }

  /** Adds the staged calls to `kept` (some of the stored calls, in their order): true if `kept` is then in time order. */
  private appendStaged(kept: RememberedCall[]): boolean {
    let ordered = this.storedInOrder;
    let latest = kept.length === 0 ? -Infinity : kept[kept.length - 1]!.at;
    for (const e of this.staged.values()) {
      if (e.at < latest) ordered = false;
      latest = e.at;
      kept.push(e);
    }
    return ordered;
  }

  /**
   * What a checkpoint written before this write's state record would be:
   * the stored calls of `remembered` (never the staged ones: they are not
   * applied until the state record is stored) — or undefined if the write
   * does not need one (it holds fewer than `checkpointEvery` calls
   * beyond the checkpoint). `revision` is the revision to write it over;
   * undefined means it is not known yet: read it (the checkpoint is then
   * written by a later write, after this one's compare-and-set has shown the
   * state record unchanged since it was loaded).
   */
  checkpointDue(remembered: RememberedRecord | undefined): { calls: RememberedRecord; revision: number | undefined } | undefined {
    if (remembered === undefined) return undefined;
    const { ik } = remembered;
    const held = remembered.held ?? ik.length;
    const every = this.options.checkpointEvery ?? CHECKPOINT_EVERY;
    if (!(every > 0) || held < every) return undefined;
    let stored = ik.length;
    while (stored > 0 && this.staged.get(ik[stored - 1]!.k) === ik[stored - 1]) stored--;
    if (stored === 0) return undefined;
    const calls: RememberedRecord = { ik: stored === ik.length ? ik : ik.slice(0, stored) };
    if (remembered.ikf !== undefined) calls.ikf = remembered.ikf;
    return { calls, revision: this.checkpointRevision };
  }

  /** The revision of the checkpoint, read (0: there is none), before one is first written. */
  learnCheckpointRevision(revision: number): void {
    this.checkpointRevision = revision;
  }

  /** The bytes of a checkpoint record holding `calls` (see {@link checkpointDue}): the compact form where it can hold them. */
  encodeCheckpoint(codec: Codec, calls: RememberedRecord): Uint8Array {
    const compact = codec.encodeWithJsonFields ? this.checkpointCompact.calls(calls.ik, 0, calls.ikf) : undefined;
    if (compact !== undefined) {
      return (
        codec.encodeWithJsonFields!({}, [`"ikc":${compact.head}`, compact.text, ']']) ??
        codec.encode({ ikc: compactValue(compact) })
      );
    }
    return codec.encode(calls.ikf === undefined ? { ik: calls.ik } : { ik: calls.ik, ikf: calls.ikf });
  }

  /**
   * The checkpoint of `calls` was stored at `revision`: what the state
   * record of this write holds becomes the calls after them.
   */
  checkpointed(remembered: RememberedRecord, calls: RememberedRecord, revision: number): RememberedRecord {
    this.checkpointRevision = revision;
    this.unchecked = 0;
    return { ...remembered, ikr: revision, held: remembered.ik.length - calls.ik.length };
  }

  /**
   * For an actor whose record is never written (volatile): the staged calls
   * join the remembered ones in place — the same entries and floor
   * {@link toRecord} then {@link commit} would give, without rebuilding them
   * on every change.
   */
  absorbStaged(now: number): void {
    if (this.staged.size === 0) return;
    // The list is changed in place once this method has made it its own (a
    // list given by a record may be shared): a copy of up to `limit` calls per
    // change was about a third of what remembering cost a volatile actor (a
    // micro-benchmark at 64). toRecord copies what it keeps, so only the
    // record it last made could still name this list, and that record no
    // longer describes it.
    this.lastRecord = undefined;
    this.orderedList = undefined;
    // If a staged call were a stored one, the stored one goes.
    const calls = this.stagedReplacesStored()
      ? this.calls.filter((e) => !this.staged.has(e.k) || this.index.get(e.k) !== e)
      : this.absorbed === this.calls
        ? this.absorbed
        : this.calls.slice();
    this.absorbed = calls;
    // (A stored call filtered out above leaves the rest in their order.)
    this.storedInOrder = this.appendStaged(calls);
    for (const e of this.staged.values()) this.index.set(e.k, e);
    this.staged.clear();
    this.trimAbsorbed(calls, now);
  }

  /**
   * For an actor whose record is never written (volatile): remembers a call
   * at once, as {@link stage} then {@link absorbStaged} would — without the
   * staged map's set, walk and clear for every call. Call it only for a key
   * {@link find} does not know.
   */
  remember(key: string, reply: unknown, now: number): void {
    if (this.staged.size > 0 || this.index.has(key)) {
      // Never on the request path (a remembered key is answered, not run): the general way.
      this.stage(key, reply, now);
      this.absorbStaged(now);
      return;
    }
    this.lastRecord = undefined;
    this.orderedList = undefined;
    const calls = this.absorbed === this.calls ? this.absorbed : (this.absorbed = this.calls.slice());
    const entry: RememberedCall = { k: key, at: now, r: reply };
    if (calls.length > 0 && now < calls[calls.length - 1]!.at) this.storedInOrder = false;
    calls.push(entry);
    this.index.set(key, entry);
    this.trimAbsorbed(calls, now);
  }

  /** Drops from the list {@link absorbStaged} or {@link remember} extended the calls past the limit (raising the floor) and the window. */
  private trimAbsorbed(calls: RememberedCall[], now: number): void {
    let drop = Math.max(0, calls.length - this.options.limit);
    for (let i = 0; i < drop; i++) this.floor = Math.max(this.floor ?? calls[i]!.at, calls[i]!.at);
    const cutoff = now - this.options.windowMs;
    while (drop < calls.length && calls[drop]!.at < cutoff) drop++;
    for (let i = 0; i < drop; i++) this.index.delete(calls[i]!.k);
    // One call in, one out is the common case: V8 shifts an array by moving its start, where splice moves every element.
    if (drop === 1) calls.shift();
    else if (drop > 0) calls.splice(0, drop);
    this.calls = calls;
    if (this.floor !== undefined && this.floor < cutoff) this.floor = undefined;
  }

  /**
   * The batch's write was stored: its calls are remembered from now on.
   * `written` is what {@link toRecord} gave for it: the stored calls it kept,
   * in their order, then the staged ones — so the stored calls it dropped are
   * deleted in place and the staged ones added, rather than all rebuilt.
   */
  commit(written: RememberedRecord | undefined): void {
    const ik = written?.ik ?? [];
    const old = this.calls;
    const last = this.lastRecord;
    this.lastRecord = undefined;
    // How many of the oldest stored calls the written list left out, if it is
    // the others then new ones: known for the record the last toRecord made
    // from these stored calls, else found by comparing the lists.
    let dropped: number | undefined;
    if (last !== undefined && last.ik === ik && last.from === old) dropped = last.dropped;
    else {
      const first = ik.length === 0 ? old.length : old.indexOf(ik[0]!);
      let same = first >= 0 && old.length - first <= ik.length;
      for (let i = first + 1; same && i < old.length; i++) same = old[i] === ik[i - first];
      if (same) dropped = first;
    }
    if (dropped !== undefined) {
      for (let i = 0; i < dropped; i++) if (this.index.get(old[i]!.k) === old[i]) this.index.delete(old[i]!.k);
      for (let i = old.length - dropped; i < ik.length; i++) this.index.set(ik[i]!.k, ik[i]!);
      this.calls = ik;
      this.storedInOrder = ik === this.orderedList || inTimeOrder(ik);
    } else this.setCalls(ik);
    this.staged.clear();
    this.floor = written?.ikf;
    this.unchecked = Math.min(written?.held ?? ik.length, ik.length);
  }
}
