/**
 * `npm run bench -- callbacks`: verified WeChat Pay payment callbacks applied per second on
 * PostgreSQL, each for a distinct waiting attempt, through `paycenter start` over HTTP; and in the
 * same run the two costs it is made of, measured alone: the crypto (signature verify + AES-GCM
 * decrypt, one core) and the SQL (the apply transaction, 50 at once, no HTTP or crypto).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { applyTrade } from '../packages/server/src/attempts/apply-trade.js';
import type { TradeSnapshot } from '../packages/server/src/channels/channel-client.js';
import {
  decryptWechatPayResource,
  encryptWechatPayResource,
} from '../packages/server/src/channels/wechatpay/aead.js';
import { loadApiV3Key, platformKeyMap } from '../packages/server/src/channels/wechatpay/keys.js';
import {
  signWechatPayResponse,
  verifyWechatPaySignature,
} from '../packages/server/src/channels/wechatpay/signature.js';
import { formatWechatPayTime } from '../packages/server/src/channels/wechatpay/time.js';
import { systemClock } from '../packages/server/src/clock.js';
import { openDatabase } from '../packages/server/src/db/database.js';
import type { Cleanup } from './support/cleanup.js';
import { createScratchDatabase, postgresVersion, withClient } from './support/database.js';
import { buildServer, createApp, startPaycenter } from './support/paycenter.js';
import { adminDatabaseUrl } from './support/settings.js';

const CONCURRENCY = 50;
const AMOUNT = 100;
const PLATFORM_KEY_ID = 'PUB_KEY_ID_0119000001092024000000000001';

function progress(message: string): void {
  console.error(`callbacks: ${message}`);
}

function pem(pair: { publicKey: KeyObject; privateKey: KeyObject }) {
  return {
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

interface Callback {
  headers: Record<string, string>;
  body: string;
}

/** Runs `work` over `items` with at most `concurrency` in flight; returns the elapsed seconds. */
async function timed<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function run(cleanup: Cleanup): Promise<void> {
  const count = Number(process.env.BENCH_CALLBACKS ?? 5000);
  if (!Number.isInteger(count) || count < 100)
    throw new Error('BENCH_CALLBACKS must be a whole number ≥ 100');
  progress('building packages/server');
  await buildServer();
  const database = await createScratchDatabase(adminDatabaseUrl(), 'paycenter_bench');
  cleanup.defer(`drop database ${database.name}`, database.drop);
  const paycenter = await startPaycenter(database.url, cleanup);
  const app = await createApp(paycenter, 'bench');

  const merchantKeys = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const platformKeys = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const config = {
    mchId: '1900000109',
    appId: 'wxd678efh567hg6787',
    apiV3Key: randomBytes(16).toString('hex'),
    merchantSerialNo: randomBytes(20).toString('hex').toUpperCase(),
    merchantPrivateKey: merchantKeys.privateKey,
    platformPublicKey: platformKeys.publicKey,
    platformPublicKeyId: PLATFORM_KEY_ID,
  };
  const created = await fetch(`${paycenter.server.baseUrl}/admin-api/channels`, {
    method: 'POST',
    headers: { authorization: `Bearer ${paycenter.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ appId: app.id, code: 'wx_native', config }),
  });
  if (created.status !== 201)
    throw new Error(`creating the channel answered ${created.status}: ${await created.text()}`);
  const channelId = ((await created.json()) as { id: string }).id;

  progress(`seeding ${2 * count} waiting orders with one attempt each`);
  await withClient(database.url, async (client) => {
    await client.query(
      `INSERT INTO orders (app_id, merchant_order_id, subject, amount, currency, expire_at, client_token, created_at, updated_at)
       SELECT $1, 'bench-' || g, 'Benchmark order', $2, 'CNY', now() + interval '2 hours', md5(g::text), now(), now()
         FROM generate_series(1, $3::int) AS g`,
      [app.id, AMOUNT, 2 * count],
    );
    await client.query(
      `INSERT INTO attempts (order_id, channel_id, channel_code, no, amount, created_at, updated_at)
       SELECT id, $1, 'wx_native', 'B' || lpad(id::text, 12, '0'), amount, now(), now() FROM orders`,
      [channelId],
    );
  });
  const nos = await withClient(database.url, async (client) =>
    (await client.query<{ no: string }>('SELECT no FROM attempts ORDER BY id')).rows.map((r) => r.no),
  );
  const httpNos = nos.slice(0, count);
  const sqlNos = nos.slice(count);

  progress(`signing and encrypting ${count} callbacks as WeChat Pay would`);
  const platformPrivate = createPrivateKey(platformKeys.privateKey);
  const now = new Date();
  const callbacks: Callback[] = httpNos.map((no, i) => {
    const transaction = {
      appid: config.appId,
      mchid: config.mchId,
      out_trade_no: no,
      transaction_id: `42000000002026${String(i).padStart(14, '0')}`,
      trade_type: 'NATIVE',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      success_time: formatWechatPayTime(now),
      payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
      amount: { total: AMOUNT, payer_total: AMOUNT, currency: 'CNY', payer_currency: 'CNY' },
    };
    const body = JSON.stringify({
      id: `EV-${i}`,
      create_time: formatWechatPayTime(now),
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource: encryptWechatPayResource({
        plaintext: JSON.stringify(transaction),
        apiV3Key: config.apiV3Key,
        associatedData: 'transaction',
      }),
    });
    const headers = signWechatPayResponse({
      body,
      privateKey: platformPrivate,
      serial: PLATFORM_KEY_ID,
      now,
    });
    return { headers: { ...headers, 'content-type': 'application/json' }, body };
  });

  progress('measuring the crypto alone (verify + decrypt, one core)');
  const keys = platformKeyMap([[PLATFORM_KEY_ID, platformKeys.publicKey]]);
  const apiV3Key = loadApiV3Key(config.apiV3Key);
  const cryptoSeconds = await timed(callbacks, 1, async ({ headers, body }) => {
    verifyWechatPaySignature({ headers, body, platformKeys: keys, now: new Date() });
    decryptWechatPayResource(JSON.parse(body).resource, apiV3Key);
  });

  progress(`measuring ${count} callbacks over HTTP, ${CONCURRENCY} at once`);
  const pool = new Pool(paycenter.server.baseUrl, { connections: CONCURRENCY });
  cleanup.defer('close the HTTP pool', () => pool.close());
  const cpuBefore = paycenter.server.cpuSeconds();
  const httpSeconds = await timed(callbacks, CONCURRENCY, async ({ headers, body }) => {
    const response = await pool.request({
      method: 'POST',
      path: `/notify/order/${channelId}`,
      headers,
      body,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200)
      throw new Error(`a callback was refused (${response.statusCode}): ${text}`);
  });
  const serverCpu = paycenter.server.cpuSeconds() - cpuBefore;
  await paycenter.server.stop();

  progress(`measuring the apply SQL alone for ${count} attempts, ${CONCURRENCY} at once`);
  const direct = await openDatabase({ kind: 'postgres', url: database.url, poolSize: 20 });
  cleanup.defer('close the direct database pool', () => direct.close());
  const trades: TradeSnapshot[] = sqlNos.map((no, i) => ({
    outTradeNo: no,
    state: 'paid',
    amount: AMOUNT,
    channelTradeNo: `43000000002026${String(i).padStart(14, '0')}`,
    payerId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o',
    paidAt: now,
    providerState: 'SUCCESS',
    raw: {},
  }));
  const sqlSeconds = await timed(trades, CONCURRENCY, async (trade) => {
    const result = await applyTrade(direct.db, systemClock, { channelId, trade });
    if (result.result !== 'applied') throw new Error(`apply answered ${JSON.stringify(result)}`);
  });

  const paid = await withClient(database.url, async (client) => {
    const { rows } = await client.query<{ attempts: string; events: string }>(
      `SELECT (SELECT count(*) FROM attempts WHERE status = 'paid') AS attempts,
              (SELECT count(*) FROM events WHERE type = 'order.paid') AS events`,
    );
    return rows[0];
  });
  if (Number(paid?.attempts) !== 2 * count || Number(paid?.events) !== 2 * count) {
    throw new Error(`expected ${2 * count} paid attempts and events, found ${JSON.stringify(paid)}`);
  }

  const rate = (seconds: number) => count / seconds;
  const callbackRate = rate(httpSeconds);
  const cryptoRate = rate(cryptoSeconds);
  const sqlRate = rate(sqlSeconds);
  const floor = Math.min(cryptoRate, sqlRate);
  const version = await postgresVersion(database.url);
  const line = (label: string, perSecond: number, note: string) =>
    `${label.padEnd(34)}${Math.round(perSecond).toLocaleString('en-US').padStart(9)} /s   ${note}`;
  console.log(
    [
      `callbacks: ${count} verified WeChat Pay payment callbacks, each for a distinct waiting attempt, PostgreSQL ${version}`,
      line(
        'callbacks applied (HTTP, 50 at once)',
        callbackRate,
        `server CPU ${((serverCpu * 1e6) / count).toFixed(0)} µs per callback`,
      ),
      line('crypto alone (verify + decrypt)', cryptoRate, 'one core, no I/O'),
      line('SQL alone (apply transaction)', sqlRate, '50 at once, no HTTP or crypto'),
      `ratio callbacks / min(crypto, SQL): ${(callbackRate / floor).toFixed(2)}`,
    ].join('\n'),
  );
}
