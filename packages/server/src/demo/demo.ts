import fs from 'node:fs';
import path from 'node:path';
import type { Sandbox } from 'paycenter-sandbox';
import { CHANNEL_CODES, type ChannelCode, providerOf } from '../channels/channel-codes.js';
import type { Services } from '../runtime.js';

/** What `data/demo.json` holds: everything needed to call the API as the demo app. */
export interface DemoInfo {
  appId: string;
  apiKey: string;
  webhookSecret: string;
  channels: Record<ChannelCode, string>;
}

export function demoFile(dataDir: string): string {
  return path.join(dataDir, 'demo.json');
}

export function readDemo(dataDir: string): DemoInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(demoFile(dataDir), 'utf8')) as DemoInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * A demo merchant that pays through the sandbox: sandbox credentials for both providers, an app
 * whose webhooks and return page are the sandbox's demo merchant, and all ten channels enabled.
 */
export async function createDemo(
  services: Services,
  sandbox: Sandbox,
  publicUrl: string,
  dataDir: string,
): Promise<DemoInfo> {
  const merchants = sandbox.createMerchants();
  const app = await services.apps.create({
    name: 'Demo shop',
    notifyUrl: `${publicUrl}/__sandbox/merchant/webhooks`,
    returnUrl: `${publicUrl}/__sandbox/merchant/return`,
  });
  const channels = {} as Record<ChannelCode, string>;
  for (const code of CHANNEL_CODES) {
    const config = merchants[providerOf(code)];
    if (!config) throw new Error(`the sandbox has no ${providerOf(code)} simulator`);
    channels[code] = (await services.channels.create({ appId: app.id, code, config })).id;
  }
  const demo: DemoInfo = { appId: app.id, apiKey: app.apiKey, webhookSecret: app.webhookSecret, channels };
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(demoFile(dataDir), `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
  return demo;
}

/** Three lines a newcomer can paste into bash: create an order, submit it to wx_native, pay it. */
export function tryItLines(demo: DemoInfo, publicUrl: string): string[] {
  const auth = `-H 'authorization: Bearer ${demo.apiKey}' -H 'content-type: application/json'`;
  const field = (name: string) => `node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).${name}'`;
  return [
    `ORDER=$(curl -s ${publicUrl}/api/v1/orders ${auth} -d '{"merchantOrderId":"demo-'$RANDOM$RANDOM'","subject":"Demo tea","amount":1}' | ${field('id')})`,
    `NO=$(curl -s ${publicUrl}/api/v1/orders/$ORDER/submit ${auth} -d '{"channelCode":"wx_native"}' | ${field('no')})`,
    `curl -s -X POST ${publicUrl}/__sandbox/control/payments/$NO/pay >/dev/null; sleep 1; curl -s ${publicUrl}/api/v1/orders/$ORDER ${auth}`,
  ];
}
