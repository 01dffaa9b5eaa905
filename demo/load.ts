/**
 * The demo's load generator and its ledger.
 *
 * Callers speak one interface version of `account` each (v1, v2 or v3) and
 * call accounts at random, closed-loop. Every acknowledged change is written
 * in the {@link Ledger}: net cents per account and the open holds. At the end
 * the ledger is compared with what the accounts say (`checkAccounts`).
 *
 * Every call is counted once: `ok`, `disallowed` (a simulation object refused
 * it by design) or `failed` (anything else, kept by error code and phase so a
 * failure can be explained, not just counted).
 *
 * @module
 */
import { isMoltError, type MoltClient } from '../runtime/index.ts';
import { accountV1 } from './service.ts';
import { accountV2 } from './account-v2.ts';
import { accountV3 } from './account-v3.ts';

export type CallerVersion = 1 | 2 | 3;

/** Counts of one run. */
export interface Tally {
  calls: number;
  ok: number;
  disallowed: number;
  failed: number;
}

/** A failure, grouped by what and when. */
export interface FailureGroup {
  code: string;
  phase: string;
  version: CallerVersion;
  message: string;
  count: number;
  /** The first error message seen in this group. */
  example: string;
}

/** The acknowledged effect of every call, per account. */
export class Ledger {
  /** Deposits minus successful withdrawals, in cents. */
  readonly netCents = new Map<string, number>();
  /** Open holds: account → hold id → cents. */
  readonly holds = new Map<string, Map<string, number>>();
  /** Acknowledged changes per account (deposits, withdrawals, holds placed and released that succeeded). */
  readonly changes = new Map<string, number>();
  /** Releases of a hold the ledger says is open that the account answered "no such hold": a lost update seen live. */
  readonly lostHolds: string[] = [];

  constructor(readonly accounts: readonly string[]) {
    for (const a of accounts) {
      this.netCents.set(a, 0);
      this.holds.set(a, new Map());
      this.changes.set(a, 0);
    }
  }

  add(account: string, cents: number): void {
    this.netCents.set(account, this.netCents.get(account)! + cents);
    this.changes.set(account, this.changes.get(account)! + 1);
  }

  hold(account: string, id: string, cents: number): void {
    this.holds.get(account)!.set(id, cents);
    this.changes.set(account, this.changes.get(account)! + 1);
  }

  release(account: string, id: string): void {
    this.holds.get(account)!.delete(id);
    this.changes.set(account, this.changes.get(account)! + 1);
  }
}

/** Shared state of all callers. */
export interface LoadContext {
  client: MoltClient;
  ledger: Ledger;
  tally: Tally;
  /** Calls and outcomes per caller version. */
  byVersion: Record<CallerVersion, Tally>;
  /** Disallowed calls by `v<version> <message>`, with the reason given and the version whose SO refused. */
  disallowedBy: Map<string, { count: number; reason: string; by: number | undefined }>;
  failures: Map<string, FailureGroup>;
  /** The phase failures are filed under. */
  phase: () => string;
}

export function createLoadContext(client: MoltClient, accounts: readonly string[], phase: () => string): LoadContext {
  const zero = (): Tally => ({ calls: 0, ok: 0, disallowed: 0, failed: 0 });
  return { client, ledger: new Ledger(accounts), tally: zero(), byVersion: { 1: zero(), 2: zero(), 3: zero() }, disallowedBy: new Map(), failures: new Map(), phase };
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A group of callers of one version; `stop()` lets each finish its call in flight, then resolves. */
export interface Callers {
  readonly version: CallerVersion;
  readonly count: number;
  stop(): Promise<void>;
}

/**
 * Starts `count` closed-loop callers of `version`. Each pauses `thinkMs`
 * (random, up to the given value) between calls.
 */
export function startCallers(ctx: LoadContext, version: CallerVersion, count: number, options: { thinkMs?: number; name?: string } = {}): Callers {
  let stopping = false;
  const thinkMs = options.thinkMs ?? 4;
  const loops = Array.from({ length: count }, async (_, i) => {
    const caller = new Caller(ctx, version, `${options.name ?? `v${version}`}-${i}`);
    while (!stopping) {
      await caller.once();
      if (thinkMs > 0) await sleep(Math.random() * thinkMs);
    }
  });
  return {
    version,
    count,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/** One caller: picks an account and an operation, calls, and records the outcome. */
class Caller {
  /** Holds this caller placed and has not released: only their owner releases them. */
  private readonly open: Array<{ account: string; id: string }> = [];
  private seq = 0;

  constructor(
    private readonly ctx: LoadContext,
    private readonly version: CallerVersion,
    private readonly name: string,
  ) {}

  async once(): Promise<void> {
    const account = pick(this.ctx.ledger.accounts);
    const r = Math.random();
    switch (this.version) {
      case 1: {
        const a = this.ctx.client.actor(accountV1, account);
        if (r < 0.5) {
          const amount = between(1, 20);
          await this.call('deposit', () => a.deposit({ amount }), () => this.ctx.ledger.add(account, amount * 100));
        } else if (r < 0.8) {
          const amount = between(1, 12);
          await this.call('withdraw', () => a.withdraw({ amount }), (res) => res.ok && this.ctx.ledger.add(account, -amount * 100));
        } else {
          await this.call('balance', () => a.balance());
        }
        return;
      }
      case 2: {
        const a = this.ctx.client.actor(accountV2, account);
        if (r < 0.45) {
          const cents = between(1, 2500);
          await this.call('deposit', () => a.deposit({ cents }), () => this.ctx.ledger.add(account, cents));
        } else if (r < 0.75) {
          const cents = between(1, 1500);
          await this.call('withdraw', () => a.withdraw({ cents }), (res) => res.ok && this.ctx.ledger.add(account, -cents));
        } else if (r < 0.9) {
          await this.call('balance', () => a.balance());
        } else {
          await this.call('statement', () => a.statement());
        }
        return;
      }
      case 3: {
        const a = this.ctx.client.actor(accountV3, account);
        if (r < 0.3) {
          const cents = between(1, 2500);
          await this.call('deposit', () => a.deposit({ cents }), () => this.ctx.ledger.add(account, cents));
        } else if (r < 0.45) {
          const cents = between(1, 1500);
          await this.call('withdraw', () => a.withdraw({ cents }), (res) => res.ok && this.ctx.ledger.add(account, -cents));
        } else if (r < 0.65) {
          const id = `${this.name}-${this.seq++}`;
          const cents = between(1, 800);
          await this.call('placeHold', () => a.placeHold({ holdId: id, cents }), (res) => {
            if (!res.ok) return;
            this.ctx.ledger.hold(account, id, cents);
            this.open.push({ account, id });
          });
        } else if (r < 0.85 && this.open.length > 0) {
          const [held] = this.open.splice(Math.floor(Math.random() * this.open.length), 1);
          const ref = this.ctx.client.actor(accountV3, held!.account);
          await this.call('releaseHold', () => ref.releaseHold({ holdId: held!.id }), (res) => {
            if (res.ok) this.ctx.ledger.release(held!.account, held!.id);
            else this.ctx.ledger.lostHolds.push(`${held!.account}/${held!.id}`);
          });
        } else if (r < 0.95) {
          await this.call('balance', () => a.balance());
        } else {
          await this.call('statement', () => a.statement());
        }
        return;
      }
    }
  }

  private async call<T>(message: string, send: () => Promise<T>, onAck?: (reply: T) => unknown): Promise<void> {
    const { tally } = this.ctx;
    const mine = this.ctx.byVersion[this.version];
    tally.calls++;
    mine.calls++;
    let reply: T;
    try {
      reply = await send();
    } catch (e) {
      const code = isMoltError(e) ? e.code : 'Error';
      if (code === 'Disallowed') {
        tally.disallowed++;
        mine.disallowed++;
        const key = `v${this.version} ${message}`;
        const seen = this.ctx.disallowedBy.get(key);
        const reason = isMoltError(e) ? String(e.data.reason ?? e.message) : String(e);
        const by = isMoltError(e) && typeof e.data.version === 'number' ? e.data.version : undefined;
        if (seen) seen.count++;
        else this.ctx.disallowedBy.set(key, { count: 1, reason, by });
        return;
      }
      tally.failed++;
      mine.failed++;
      const phase = this.ctx.phase();
      const key = `${code} ${phase} v${this.version} ${message}`;
      const group = this.ctx.failures.get(key);
      if (group) group.count++;
      else this.ctx.failures.set(key, { code, phase, version: this.version, message, count: 1, example: e instanceof Error ? e.message : String(e) });
      return;
    }
    tally.ok++;
    mine.ok++;
    onAck?.(reply);
  }
}

/** What the final read-back found. */
export interface CheckResult {
  /** Acknowledged changes missing from the accounts (see {@link checkAccounts}). */
  lostUpdates: number;
  /** One line per account that disagrees with the ledger. */
  problems: string[];
  /** Sum of all balances, and of all open holds, in cents. */
  totalCents: number;
  heldCents: number;
  openHolds: number;
}

/**
 * Reads every account back through a v3 client and compares it with the
 * ledger of acknowledged operations.
 *
 * Lost updates counted: each open hold the ledger has that the account lacks
 * (an acknowledged `placeHold` missing), each hold the account has that the
 * ledger released or never placed (an acknowledged `releaseHold` missing),
 * each release answered "no such hold" while the ledger had it open, and, for
 * each account whose balance differs from deposits − withdrawals, at least
 * one (the difference, in units of the largest single change, rounded up).
 */
export async function checkAccounts(client: MoltClient, ledger: Ledger): Promise<CheckResult> {
  let lostUpdates = ledger.lostHolds.length;
  const problems: string[] = ledger.lostHolds.map((h) => `${h}: released, but the account answered that it has no such hold`);
  let totalCents = 0;
  let heldCents = 0;
  let openHolds = 0;
  const statements = await Promise.all(ledger.accounts.map(async (a) => [a, await client.actor(accountV3, a).statement()] as const));
  for (const [account, s] of statements) {
    totalCents += s.balanceCents;
    const expected = ledger.netCents.get(account)!;
    if (s.balanceCents !== expected) {
      const diff = expected - s.balanceCents;
      lostUpdates += Math.max(1, Math.ceil(Math.abs(diff) / 2500));
      problems.push(`${account}: balance ${s.balanceCents} cents, acknowledged operations say ${expected} (${diff > 0 ? 'missing' : 'extra'} ${Math.abs(diff)})`);
    }
    const want = ledger.holds.get(account)!;
    for (const [id, cents] of want) {
      if (s.holds[id] !== cents) {
        lostUpdates++;
        problems.push(`${account}: hold ${id} of ${cents} cents was acknowledged but is ${s.holds[id] === undefined ? 'missing' : `${s.holds[id]} cents`}`);
      }
    }
    for (const [id, cents] of Object.entries(s.holds)) {
      heldCents += cents;
      openHolds++;
      if (!want.has(id)) {
        lostUpdates++;
        problems.push(`${account}: hold ${id} (${cents} cents) is open, but its release was acknowledged (or it was never placed)`);
      }
    }
    const available = s.balanceCents - Object.values(s.holds).reduce((x, y) => x + y, 0);
    if (s.availableCents !== available) problems.push(`${account}: available ${s.availableCents} ≠ balance − holds = ${available}`);
  }
  return { lostUpdates, problems, totalCents, heldCents, openHolds };
}
