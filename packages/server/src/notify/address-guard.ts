import dns, { type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import net, { BlockList } from 'node:net';
import { Agent, buildConnector } from 'undici';

/**
 * Webhook URLs are chosen by merchants, so paycenter must not become a way into its own network: a
 * notify URL whose host resolves to a loopback, private, link-local, metadata or otherwise
 * non-public address is refused. The check runs where the connection is made, on the address
 * actually connected to, so a name that resolves to a public address when saved and to 127.0.0.1
 * when sent (DNS rebinding) is refused too.
 */
const RANGES: { name: string; family: 'ipv4' | 'ipv6'; network: string; prefix: number }[] = [
  { name: 'metadata', family: 'ipv4', network: '169.254.169.254', prefix: 32 },
  { name: 'metadata', family: 'ipv6', network: 'fd00:ec2::254', prefix: 128 },
  { name: 'unspecified', family: 'ipv4', network: '0.0.0.0', prefix: 8 },
  { name: 'loopback', family: 'ipv4', network: '127.0.0.0', prefix: 8 },
  { name: 'private', family: 'ipv4', network: '10.0.0.0', prefix: 8 },
  { name: 'private', family: 'ipv4', network: '172.16.0.0', prefix: 12 },
  { name: 'private', family: 'ipv4', network: '192.168.0.0', prefix: 16 },
  { name: 'carrier-grade NAT', family: 'ipv4', network: '100.64.0.0', prefix: 10 },
  { name: 'link-local', family: 'ipv4', network: '169.254.0.0', prefix: 16 },
  { name: 'reserved', family: 'ipv4', network: '192.0.0.0', prefix: 24 },
  { name: 'reserved', family: 'ipv4', network: '198.18.0.0', prefix: 15 },
  { name: 'multicast', family: 'ipv4', network: '224.0.0.0', prefix: 4 },
  { name: 'reserved', family: 'ipv4', network: '240.0.0.0', prefix: 4 },
  { name: 'unspecified', family: 'ipv6', network: '::', prefix: 128 },
  { name: 'loopback', family: 'ipv6', network: '::1', prefix: 128 },
  { name: 'private', family: 'ipv6', network: 'fc00::', prefix: 7 },
  { name: 'link-local', family: 'ipv6', network: 'fe80::', prefix: 10 },
  { name: 'site-local', family: 'ipv6', network: 'fec0::', prefix: 10 },
  { name: 'multicast', family: 'ipv6', network: 'ff00::', prefix: 8 },
];

const lists = RANGES.map((range) => {
  const list = new BlockList();
  list.addSubnet(range.network, range.prefix, range.family);
  return { name: range.name, family: range.family, list };
});

/** IPv6 forms that carry an IPv4 address: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16). */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (dotted) return dotted[1];
  const words = expandIpv6(lower);
  if (!words) return undefined;
  const toV4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const isMapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
  const isNat64 = words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0);
  if (isMapped || isNat64) return toV4(words[6] ?? 0, words[7] ?? 0);
  if (words[0] === 0x2002) return toV4(words[1] ?? 0, words[2] ?? 0);
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  let text = address;
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4?.[1]) {
    const bytes = v4[1].split('.').map(Number);
    text = `${text.slice(0, -v4[1].length)}${(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16)}:${(((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  const words = [...left, ...Array<string>(missing).fill('0'), ...right].map((w) => Number.parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)
    ? words
    : undefined;
}

/** Why an address may not be connected to (`"loopback"`, `"private"`, …), or undefined when it is public. */
export function forbiddenAddressKind(address: string): string | undefined {
  const version = net.isIP(address);
  if (version === 0) return 'not an IP address';
  if (version === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return forbiddenAddressKind(v4);
  }
  const family = version === 4 ? 'ipv4' : 'ipv6';
  for (const entry of lists) {
    if (entry.family === family && entry.list.check(address, family)) return entry.name;
  }
  return undefined;
}

export class ForbiddenAddressError extends Error {
  readonly code = 'ERR_NOTIFY_FORBIDDEN_ADDRESS';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly kind: string,
  ) {
    super(
      host === address
        ? `refused to connect to ${address}: a ${kind} address (set PAYCENTER_NOTIFY_ALLOW_PRIVATE=true to allow private notify URLs)`
        : `refused to connect to ${host}: it resolves to ${address}, a ${kind} address (set PAYCENTER_NOTIFY_ALLOW_PRIVATE=true to allow private notify URLs)`,
    );
    this.name = 'ForbiddenAddressError';
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** dns.lookup that fails when any address of the name is forbidden, for net/tls `lookup`. */
export function guardedLookup(
  hostname: string,
  options: LookupOneOptions | LookupAllOptions | number | undefined,
  callback: LookupCallback,
): void {
  const opts: LookupAllOptions = {
    ...(typeof options === 'object' ? options : typeof options === 'number' ? { family: options } : {}),
    all: true,
  };
  dns.lookup(hostname, opts, (error, addresses) => {
    if (error) return callback(error, []);
    for (const { address } of addresses) {
      const kind = forbiddenAddressKind(address);
      if (kind !== undefined) return callback(new ForbiddenAddressError(hostname, address, kind), []);
    }
    if (typeof options === 'object' && options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first)
      return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

type Connector = buildConnector.connector;

/**
 * An undici connector that refuses forbidden addresses: IP literals are checked before connecting,
 * names through `guardedLookup` on the addresses the socket really connects to.
 */
export function guardedConnector(base: Connector): Connector {
  return (options, callback) => {
    const kind = net.isIP(options.hostname) ? forbiddenAddressKind(options.hostname) : undefined;
    if (kind !== undefined) {
      callback(new ForbiddenAddressError(options.hostname, options.hostname, kind), null);
      return;
    }
    base(options, callback);
  };
}

export interface WebhookAgentOptions {
  /** Skip the address check (PAYCENTER_NOTIFY_ALLOW_PRIVATE=true; the embedded demo). */
  allowPrivate: boolean;
  /** Connections kept per origin. */
  connections: number;
  connectTimeoutMs: number;
  timeoutMs: number;
}

/** The keep-alive connection pool webhooks go out through. */
export function createWebhookAgent(options: WebhookAgentOptions): Agent {
  const connectOptions = {
    timeout: options.connectTimeoutMs,
    ...(options.allowPrivate ? {} : { lookup: guardedLookup }),
  } as buildConnector.BuildOptions;
  const base = buildConnector(connectOptions);
  return new Agent({
    connect: options.allowPrivate ? base : guardedConnector(base),
    connections: options.connections,
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
}
