import pg from 'pg';

interface ListenLogger {
  warn(details: Record<string, unknown>, message: string): void;
}

export interface ListenConnectionOptions {
  connectionString: string;
  /** The LISTEN/NOTIFY channel: a plain identifier. */
  channel: string;
  onNotification: (payload: string) => void;
  /** Called each time LISTEN is (re-)established: whatever happened while deaf is due now. */
  onListening: () => void;
  logger: ListenLogger;
  /** What the instance falls back on while the connection is down, for the warning. */
  fallback: string;
}

/**
 * One dedicated PostgreSQL connection that LISTENs on a channel and sends this instance's NOTIFYs,
 * outside any transaction. A lost connection is reopened with a doubling backoff (0.5 s … 30 s);
 * meanwhile the owner's fallback (polling, sweeping) covers.
 */
export class ListenConnection {
  readonly #options: ListenConnectionOptions;
  #client: pg.Client | undefined;
  #listening = false;
  #stopped = true;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelayMs = 500;

  constructor(options: ListenConnectionOptions) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.channel))
      throw new Error(`invalid channel name ${options.channel}`);
    this.#options = options;
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** Connects and LISTENs; a failure is logged and retried, never thrown. */
  async start(): Promise<void> {
    this.#stopped = false;
    if (!this.#client) await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#listening = false;
    if (client) await client.end().catch(() => {});
  }

  /** Sends a NOTIFY on the connection; false when there is none (the owner's fallback covers). */
  notify(payload: string, onError: (error: unknown) => void): boolean {
    const client = this.#client;
    if (!client || !this.#listening) return false;
    client.query('SELECT pg_notify($1, $2)', [this.#options.channel, payload]).catch(onError);
    return true;
  }

  async #connect(): Promise<void> {
    const { channel } = this.#options;
    // TCP keepalive: a half-open connection (a dropped NAT entry, a vanished host) errors instead of
    // staying 'listening' while nothing arrives.
    const client = new pg.Client({ connectionString: this.#options.connectionString, keepAlive: true });
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload) this.#options.onNotification(message.payload);
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, undefined));
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
      if (this.#client !== client) {
        await client.end().catch(() => {});
        return;
      }
      this.#listening = true;
      this.#reconnectDelayMs = 500;
      this.#options.onListening();
    } catch (error) {
      this.#lost(client, error);
    }
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#listening = false;
    client.end().catch(() => {});
    if (this.#stopped) return;
    this.#options.logger.warn(
      { err: error, channel: this.#options.channel, retryInMs: this.#reconnectDelayMs },
      `the LISTEN connection is down; ${this.#options.fallback} until it is back`,
    );
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#stopped) void this.#connect();
    }, this.#reconnectDelayMs);
    this.#reconnectTimer.unref();
    this.#reconnectDelayMs = Math.min(this.#reconnectDelayMs * 2, 30_000);
  }
}
