#!/usr/bin/env node
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { createSandbox } from './create.js';

/** `paycenter-sandbox --port 9090`: the simulators alone, for merchants testing their own integration. */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '9090' },
    host: { type: 'string', default: '127.0.0.1' },
    'time-scale': { type: 'string', default: '1' },
    'public-url': { type: 'string' },
    'state-file': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`paycenter-sandbox — simulated WeChat Pay v3 and Alipay

Usage: paycenter-sandbox [--port 9090] [--host 127.0.0.1] [--time-scale 1] [--public-url http://host:port]
                         [--state-file sandbox.json]

  --time-scale   multiplies the providers' callback retry delays (0.01: a 15 s retry after 0.15 s)
  --public-url   where merchants reach the sandbox (default http://<host>:<port>)
  --state-file   keep the simulated merchants (their keys) in this file across restarts`);
  process.exit(0);
}

const port = Number(values.port);
const timeScale = Number(values['time-scale']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('paycenter-sandbox: --port must be an integer from 0 to 65535');
  process.exit(1);
}
if (!Number.isFinite(timeScale) || timeScale <= 0) {
  console.error('paycenter-sandbox: --time-scale must be a positive number');
  process.exit(1);
}

const publicUrl = values['public-url']?.replace(/\/+$/, '');
const stateFile = values['state-file'];
const sandbox = createSandbox({
  timeScale,
  ...(publicUrl ? { baseUrl: `${publicUrl}/__sandbox` } : {}),
  ...(stateFile ? { stateFile } : {}),
});
const app = Fastify({ logger: { level: 'info' } });
await app.register(sandbox.plugin, { prefix: '/__sandbox' });
const address = await app.listen({ host: values.host, port });
console.log(`paycenter-sandbox listening on ${address}
  WeChat Pay v3  ${address}/__sandbox/wechatpay/v3/…
  Alipay         ${address}/__sandbox/alipay/gateway.do
  control API    ${address}/__sandbox/control/…  (POST /__sandbox/control/merchants for credentials)`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
