import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { newAppId, newPartnerId } from './protocol.js';

/**
 * One Alipay application as the gateway knows it (public-key mode): the app public key the merchant
 * uploaded (verifies its requests) and the Alipay key pair of this app (signs responses, notifies and
 * sync returns; the merchant holds the public half as "the Alipay public key").
 */
export interface AlipayMerchant {
  appId: string;
  /** The merchant's partner id (`2088…`), sent as `seller_id`. */
  sellerId: string;
  appPublicKey: KeyObject;
  alipayPrivateKey: KeyObject;
}

/** paycenter's channel config for Alipay (packages/server/src/channels/alipay/config.ts). */
export interface AlipayChannelConfig {
  appId: string;
  privateKey: string;
  alipayPublicKey: string;
  gateway: string;
  signType: 'RSA2';
}

/** What it takes to recreate a merchant in a fresh sandbox (all PEM). */
export interface AlipayMerchantRecord {
  appId: string;
  sellerId: string;
  appPublicKey: string;
  alipayPrivateKey: string;
}

export class AlipayMerchants {
  readonly #byAppId = new Map<string, AlipayMerchant>();

  get(appId: string): AlipayMerchant | undefined {
    return this.#byAppId.get(appId);
  }

  /** Fresh RSA-2048 key pairs and ids; returns the merchant and its channel config. */
  create(gateway: string): { merchant: AlipayMerchant; config: AlipayChannelConfig } {
    const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const alipay = generateKeyPairSync('rsa', { modulusLength: 2048 });
    let appId = newAppId();
    while (this.#byAppId.has(appId)) appId = newAppId();
    const merchant: AlipayMerchant = {
      appId,
      sellerId: newPartnerId(),
      appPublicKey: app.publicKey,
      alipayPrivateKey: alipay.privateKey,
    };
    this.#byAppId.set(appId, merchant);
    return {
      merchant,
      config: {
        appId,
        privateKey: app.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        alipayPublicKey: alipay.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        gateway,
        signType: 'RSA2',
      },
    };
  }

  /** Registers a merchant kept from an earlier run (a sandbox forgets everything when it stops). */
  import(record: AlipayMerchantRecord): AlipayMerchant {
    const merchant: AlipayMerchant = {
      appId: record.appId,
      sellerId: record.sellerId,
      appPublicKey: createPublicKey(record.appPublicKey),
      alipayPrivateKey: createPrivateKey(record.alipayPrivateKey),
    };
    this.#byAppId.set(merchant.appId, merchant);
    return merchant;
  }

  ids(): string[] {
    return [...this.#byAppId.keys()];
  }

  export(appId: string): AlipayMerchantRecord | undefined {
    const merchant = this.#byAppId.get(appId);
    if (!merchant) return undefined;
    return {
      appId: merchant.appId,
      sellerId: merchant.sellerId,
      appPublicKey: merchant.appPublicKey.export({ type: 'spki', format: 'pem' }).toString(),
      alipayPrivateKey: merchant.alipayPrivateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }
}
