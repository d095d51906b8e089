import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSandbox } from '../src/create.js';

describe('sandbox state file', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('remembers its merchants across restarts, in a file only the owner can read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-state-'));
    dirs.push(dir);
    const stateFile = path.join(dir, 'sandbox.json');
    const first = createSandbox({ baseUrl: 'http://127.0.0.1:1/__sandbox', stateFile });
    const created = first.createMerchants();
    expect(fs.statSync(stateFile).mode & 0o777).toBe(0o600);

    const second = createSandbox({ baseUrl: 'http://127.0.0.1:1/__sandbox', stateFile });
    const wechat = second.simulators.get('wechatpay')!.exportMerchants() as { mchid: string }[];
    const alipay = second.simulators.get('alipay')!.exportMerchants() as { appId: string }[];
    expect(wechat.map((m) => m.mchid)).toEqual([created.wechatpay!.mchId]);
    expect(alipay.map((m) => m.appId)).toEqual([created.alipay!.appId]);
    // The restored keys are the same keys.
    expect(second.simulators.get('wechatpay')!.exportMerchants()).toEqual(
      first.simulators.get('wechatpay')!.exportMerchants(),
    );
  });

  it('refuses a state file that is not its own rather than starting half-configured', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-state-'));
    dirs.push(dir);
    const stateFile = path.join(dir, 'sandbox.json');
    fs.writeFileSync(stateFile, '{"merchants":{"wechatpay":[{"mchid":1}]}}');
    expect(() => createSandbox({ stateFile })).toThrow(/not a WeChat Pay sandbox merchant record/);
    fs.writeFileSync(stateFile, 'not json');
    expect(() => createSandbox({ stateFile })).toThrow(/cannot read the sandbox state/);
  });
});
