import { CHANNEL_CODES, type ChannelCode } from '../../src/channels/channel-codes.js';

/** A small seeded PRNG (mulberry32): the same seed plans the same day. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What happens to one order during the day.
 * - `pay`: the user pays the one attempt.
 * - `never`: the user submits (and perhaps opens the cashier) but never pays; the order expires.
 * - `twice`: two attempts on two channels, both paid (an old QR code): one order.paid, one duplicate.
 * - `switch`: the user starts on one channel, then pays on another; the first is closed.
 * - `late`: paid just before expiry, its callback held until after the expiry job ran.
 * - `close`: the merchant closes the unpaid order.
 * - `close_paid`: paid (the callback perhaps lost or still on its way), then the merchant closes:
 *   "already paid" wins.
 */
export type Scenario = 'pay' | 'never' | 'twice' | 'switch' | 'late' | 'close' | 'close_paid';

/** What the sandbox does with the callback of one payment or refund. */
export type Fate = 'deliver' | 'drop' | 'duplicate';

export interface PlannedAttempt {
  code: ChannelCode;
  /** The user pays this attempt. */
  pays: boolean;
  fate: Fate;
  /** The user opens the provider's cashier (Alipay page/wap/app trades exist only then). */
  opens: boolean;
  /** After paying with the callback lost, the user presses "I have paid" (the merchant's sync). */
  syncs: boolean;
  /** alipay_bar only: the payer's code; ending in 0003 makes the trade wait for the payer. */
  authCode?: string;
  /** alipay_bar only: the code is refused (ends in 0004); the attempt fails at submit. */
  refused?: boolean;
  id?: string;
  no?: string;
}

export interface PlannedRefund {
  amount: number;
  fate: Fate;
  merchantRefundId: string;
  /** The merchant sends the request twice at once (a retry racing the first): still one refund. */
  twice: boolean;
  /** On WeChat Pay, the provider closes this refund instead of paying it out (refund.failed). */
  closedByWechat: boolean;
  /** Set by the run: the refund went to WeChat Pay with the sandbox's marker, so it failed. */
  failed?: boolean;
}

export interface PlannedOrder {
  index: number;
  /** The order's own notify URL path (with a {channelCode} placeholder), instead of the app's. */
  notifyPath: string | null;
  merchantOrderId: string;
  amount: number;
  scenario: Scenario;
  attempts: PlannedAttempt[];
  refunds: PlannedRefund[];
  id?: string;
}

const SCENARIO_WEIGHTS: readonly [Scenario, number][] = [
  ['pay', 45],
  ['never', 12],
  ['twice', 10],
  ['switch', 8],
  ['late', 12],
  ['close', 8],
  ['close_paid', 5],
];

const PAGE_LIKE: readonly ChannelCode[] = ['alipay_pc', 'alipay_wap', 'alipay_app'];

function pick<T>(random: () => number, weighted: readonly (readonly [T, number])[]): T {
  const total = weighted.reduce((sum, [, w]) => sum + w, 0);
  let r = random() * total;
  for (const [value, weight] of weighted) {
    r -= weight;
    if (r < 0) return value;
  }
  return weighted[weighted.length - 1]![0];
}

function int(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** ~10 % of callbacks dropped, ~10 % duplicated. */
function fate(random: () => number): Fate {
  const r = random();
  return r < 0.1 ? 'drop' : r < 0.2 ? 'duplicate' : 'deliver';
}

function barCode(random: () => number, waits: boolean): string {
  const digits = Array.from({ length: 14 }, () => int(random, 0, 9)).join('');
  return `28${digits}${waits ? '0003' : '12'}`;
}

/** `total` fen in `parts` positive amounts. */
function split(random: () => number, total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(int(random, 1, total - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), total];
  return points.slice(1).map((p, i) => p - points[i]!);
}

export function planDay(seed: number, orders: number): PlannedOrder[] {
  const random = prng(seed);
  const plan: PlannedOrder[] = [];
  for (let index = 0; index < orders; index++) {
    const code = CHANNEL_CODES[index % CHANNEL_CODES.length]!;
    const other = CHANNEL_CODES[(index + int(random, 1, CHANNEL_CODES.length - 1)) % CHANNEL_CODES.length]!;
    const scenario = pick(random, SCENARIO_WEIGHTS);
    const amount = random() < 0.05 ? int(random, 1, 9) : int(random, 1, 50_000);
    const attempt = (c: ChannelCode, pays: boolean, payNow = pays): PlannedAttempt => {
      const f = fate(random);
      return {
        code: c,
        pays,
        fate: f,
        syncs: f === 'drop' && scenario !== 'late' && random() < 0.3,
        // Page-like Alipay trades are opened by whoever pays; some who never pay never open them.
        opens: pays || !PAGE_LIKE.includes(c) || random() < 0.5,
        ...(c === 'alipay_bar' ? { authCode: barCode(random, !payNow) } : {}),
      };
    };
    let attempts: PlannedAttempt[];
    switch (scenario) {
      case 'pay':
      case 'close_paid':
        attempts = [attempt(code, true)];
        break;
      case 'never':
      case 'close':
        attempts = [attempt(code, false)];
        break;
      case 'twice':
        attempts = [attempt(code, true), attempt(other, true)];
        break;
      case 'switch':
        attempts = [attempt(other, false), attempt(code, true)];
        // A bar code the payer shows may be refused: the attempt fails, the payer pays another way.
        if (code !== 'alipay_bar' && random() < 0.2) {
          attempts[0] = { ...attempt('alipay_bar', false), authCode: '281234567890120004', refused: true };
        }
        break;
      case 'late':
        // Paid at the last minute: a bar code that waits for the payer, paid then.
        attempts = [attempt(code, true, false)];
        break;
    }
    const refunds: PlannedRefund[] = [];
    const paid = scenario !== 'never' && scenario !== 'close';
    if (paid && random() < 0.4) {
      const full = random() < 0.3 || amount === 1;
      const total = full ? amount : int(random, 1, amount - 1);
      split(random, total, int(random, 1, 3)).forEach((part, n) => {
        refunds.push({
          amount: part,
          fate: fate(random),
          merchantRefundId: `R${seed}-${index}-${n}`,
          twice: random() < 0.1,
          closedByWechat: random() < 0.08,
        });
      });
    }
    const notifyPath = random() < 0.2 ? `/orders/${index}/{channelCode}` : null;
    plan.push({
      index,
      merchantOrderId: `day-${seed}-${index}`,
      notifyPath,
      amount,
      scenario,
      attempts,
      refunds,
    });
  }
  return plan;
}

/** Runs `work` over `items` with at most `limit` at a time. */
export async function inPool<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(workers);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
