import { createAlipaySimulator } from './alipay/simulator.js';
import { Sandbox, type SandboxOptions } from './sandbox.js';
import { createWechatPaySimulator } from './wechatpay/simulator.js';

/** The full sandbox: WeChat Pay v3 and Alipay. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  return new Sandbox(options, [
    (context) => createWechatPaySimulator(context),
    (context) => createAlipaySimulator(context),
  ]);
}
