import type { Kysely } from 'kysely';
import * as appRepo from '../apps/app.repository.js';
import type { Clock } from '../clock.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { ChannelRow, ChannelStatus, DB } from '../db/schema.js';
import { AppError, invalidRequest, isUniqueViolation, notFound } from '../errors.js';
import { isRowId } from '../validation.js';
import { type AlipayConfig, parseAlipayConfig } from './alipay/config.js';
import * as repo from './channel.repository.js';
import { type ChannelCode, isChannelCode, providerOf } from './channel-codes.js';
import type { RawConfig } from './config-fields.js';
import { parseWechatPayConfig, type WechatPayConfig } from './wechatpay/config.js';

export interface ChannelView {
  id: string;
  appId: string;
  code: ChannelCode;
  status: ChannelStatus;
  feeRate: number;
  createdAt: string;
  updatedAt: string;
}

export type ChannelCredentials =
  | { provider: 'wechatpay'; config: WechatPayConfig }
  | { provider: 'alipay'; config: AlipayConfig };

const CONFIG_PURPOSE = 'channels.config';

function toView(row: ChannelRow): ChannelView {
  return {
    id: row.id,
    appId: row.app_id,
    code: row.code as ChannelCode,
    status: row.status,
    feeRate: row.fee_rate,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** Validates credentials against the provider of `code` and returns them in their normalised form. */
export function parseChannelConfig(code: ChannelCode, config: unknown): ChannelCredentials {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw invalidRequest('config', 'must be an object with the provider credentials');
  }
  return providerOf(code) === 'wechatpay'
    ? { provider: 'wechatpay', config: parseWechatPayConfig(config as RawConfig) }
    : { provider: 'alipay', config: parseAlipayConfig(config as RawConfig) };
}

function checkFeeRate(feeRate: number): number {
  if (!Number.isInteger(feeRate) || feeRate < 0 || feeRate > 10000) {
    throw invalidRequest('feeRate', 'must be whole basis points from 0 to 10000');
  }
  return feeRate;
}

export class ChannelService {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
  ) {}

  async create(input: {
    appId: string;
    code: string;
    config: unknown;
    feeRate?: number | undefined;
  }): Promise<ChannelView> {
    if (!isChannelCode(input.code)) throw invalidRequest('code', `unknown channel code "${input.code}"`);
    const credentials = parseChannelConfig(input.code, input.config);
    const feeRate = checkFeeRate(input.feeRate ?? 0);
    const app = isRowId(input.appId) ? await appRepo.findApp(this.db, input.appId) : undefined;
    if (!app) throw invalidRequest('appId', 'no app with this id');
    try {
      const row = await repo.insertChannel(this.db, {
        appId: app.id,
        code: input.code,
        feeRate,
        sealedConfig: this.#seal(credentials),
        now: this.clock.now(),
      });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error, 'channels_app_code_key')) {
        throw new AppError(
          'channel_exists',
          `app ${app.id} already has a ${input.code} channel; update it instead`,
        );
      }
      throw error;
    }
  }

  async list(appId?: string): Promise<ChannelView[]> {
    if (appId !== undefined && !isRowId(appId)) return [];
    return (await repo.listChannels(this.db, appId)).map(toView);
  }

  async get(id: string): Promise<ChannelView> {
    return toView(await this.#row(id));
  }

  async update(
    id: string,
    patch: { status?: ChannelStatus | undefined; config?: unknown; feeRate?: number | undefined },
  ): Promise<ChannelView> {
    const current = await this.#row(id);
    const sealedConfig =
      patch.config === undefined
        ? undefined
        : this.#seal(parseChannelConfig(current.code as ChannelCode, patch.config));
    const row = await repo.updateChannel(
      this.db,
      id,
      {
        ...(patch.status === undefined ? {} : { status: patch.status }),
        ...(patch.feeRate === undefined ? {} : { feeRate: checkFeeRate(patch.feeRate) }),
        ...(sealedConfig === undefined ? {} : { sealedConfig }),
      },
      this.clock.now(),
    );
    if (!row) throw notFound('channel');
    return toView(row);
  }

  /** A channel that has carried payments keeps its history: disable it instead. */
  async delete(id: string): Promise<void> {
    await this.#row(id);
    if (await repo.channelHasAttempts(this.db, id)) {
      throw new AppError(
        'channel_in_use',
        'this channel has payment attempts; disable it instead of deleting it',
      );
    }
    if (!(await repo.deleteChannel(this.db, id))) throw notFound('channel');
  }

  /** The decrypted credentials, for the channel clients. */
  async credentials(id: string): Promise<ChannelCredentials> {
    return this.open(await this.#row(id));
  }

  open(row: ChannelRow): ChannelCredentials {
    return JSON.parse(this.secrets.open(row.config, CONFIG_PURPOSE)) as ChannelCredentials;
  }

  /** The app's channel of this code, enabled or not. */
  async findForApp(appId: string, code: ChannelCode): Promise<ChannelRow | undefined> {
    return repo.findChannelForApp(this.db, appId, code);
  }

  /** A channel by id, for callbacks, which name the channel in their URL. */
  async find(id: string): Promise<ChannelRow | undefined> {
    return isRowId(id) ? repo.findChannel(this.db, id) : undefined;
  }

  #seal(credentials: ChannelCredentials): string {
    return this.secrets.seal(JSON.stringify(credentials), CONFIG_PURPOSE);
  }

  async #row(id: string): Promise<ChannelRow> {
    const row = isRowId(id) ? await repo.findChannel(this.db, id) : undefined;
    if (!row) throw notFound('channel');
    return row;
  }
}
