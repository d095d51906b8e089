import type { ChannelRow } from '../db/schema.js';
import type { ChannelService } from './channel.service.js';
import type { ChannelClient, ChannelClientDeps } from './channel-client.js';
import { createChannelClient } from './create-client.js';

/**
 * Channel clients, one per channel, built once and reused (their keys are parsed at construction).
 * A client is rebuilt when its sealed credentials change (every seal has a fresh IV, so any update of
 * the config shows), so new credentials take effect at once.
 */
export class ChannelClients {
  readonly #cache = new Map<string, { sealed: string; client: ChannelClient }>();

  constructor(
    private readonly channels: ChannelService,
    private readonly deps: ChannelClientDeps,
  ) {}

  for(row: ChannelRow): ChannelClient {
    const cached = this.#cache.get(row.id);
    if (cached && cached.sealed === row.config) return cached.client;
    const client = createChannelClient(this.channels.open(row), this.deps);
    this.#cache.set(row.id, { sealed: row.config, client });
    return client;
  }
}
