/**
 * Which addresses a webhook may be sent to (the SSRF guard). A callback_url is refused at
 * submission when its host resolves to any address that is not public unicast, unless the
 * configuration allows it; the sender checks again at connect time (DNS can change between
 * submission and delivery), on the very addresses it connects to.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

export type AddressClass = 'public' | 'loopback' | 'private' | 'link_local' | 'unspecified' | 'multicast' | 'reserved';

export interface TargetPolicy {
  allowPrivate: boolean;
  /** Host names (exact, case-insensitive) and CIDR ranges allowed whatever they resolve to. */
  allowedHosts: readonly string[];
}

export function targetPolicyFrom(config: Pick<Config, 'webhookAllowPrivate' | 'webhookAllowedHosts'>): TargetPolicy {
  return { allowPrivate: config.webhookAllowPrivate, allowedHosts: config.webhookAllowedHosts };
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function inV4(a: string, base: string, bits: number): boolean {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((v4ToInt(a) & mask) >>> 0) === ((v4ToInt(base) & mask) >>> 0);
}

/** The 8 16-bit groups of an IPv6 address (handles `::` and an embedded dotted IPv4 tail). */
function v6Groups(a: string): number[] {
  let s = a.toLowerCase().split('%')[0]!;
  const dotted = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const n = v4ToInt(dotted[1]!);
    s = `${s.slice(0, -dotted[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, null];
  const h = head ? head.split(':').filter((x) => x !== '') : [];
  const t = tail ? tail.split(':').filter((x) => x !== '') : [];
  const fill = tail === null ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => parseInt(x, 16));
}

function classifyV4(a: string): AddressClass {
  if (inV4(a, '0.0.0.0', 8)) return 'unspecified';
  if (inV4(a, '127.0.0.0', 8)) return 'loopback';
  if (inV4(a, '10.0.0.0', 8) || inV4(a, '172.16.0.0', 12) || inV4(a, '192.168.0.0', 16) || inV4(a, '100.64.0.0', 10)) return 'private';
  if (inV4(a, '169.254.0.0', 16)) return 'link_local';
  if (inV4(a, '224.0.0.0', 4)) return 'multicast';
  // 240/4 (incl. broadcast), benchmarking 198.18/15, IETF 192.0.0/24, documentation ranges.
  if (inV4(a, '240.0.0.0', 4) || inV4(a, '198.18.0.0', 15) || inV4(a, '192.0.0.0', 24) || inV4(a, '192.0.2.0', 24)
    || inV4(a, '198.51.100.0', 24) || inV4(a, '203.0.113.0', 24)) return 'reserved';
  return 'public';
}

function groupsToV4(g: number[], from: number): string {
  return [g[from]! >> 8, g[from]! & 255, g[from + 1]! >> 8, g[from + 1]! & 255].join('.');
}

/** Classifies an IP address; IPv6 forms that embed an IPv4 address are judged by that address. */
export function classifyAddress(address: string): AddressClass {
  const family = net.isIP(address.split('%')[0]!);
  if (family === 4) return classifyV4(address);
  if (family !== 6) return 'reserved';
  const g = v6Groups(address);
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64): the IPv4 inside decides.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) return classifyV4(groupsToV4(g, 6));
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return classifyV4(groupsToV4(g, 6));
  if (g[0] === 0x2002) return classifyV4(groupsToV4(g, 1)); // 6to4
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link_local';
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'reserved'; // documentation
  return 'public';
}

function inCidr(address: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  if (!base || net.isIP(base) === 0) return false;
  const bits = bitsText === undefined ? (net.isIP(base) === 4 ? 32 : 128) : Number(bitsText);
  if (!Number.isInteger(bits)) return false;
  if (net.isIP(base) === 4 && net.isIP(address) === 4) return bits >= 0 && bits <= 32 && inV4(address, base, bits);
  if (net.isIP(base) === 6 && net.isIP(address) === 6) {
    const a = v6Groups(address);
    const b = v6Groups(base);
    for (let i = 0; i < 8; i++) {
      const take = Math.max(0, Math.min(16, bits - i * 16));
      if (take === 0) break;
      const mask = (0xffff << (16 - take)) & 0xffff;
      if ((a[i]! & mask) !== (b[i]! & mask)) return false;
    }
    return true;
  }
  return false;
}

/** Null when `address` (reached via `hostname`) is an acceptable target; else why not. */
export function refusalFor(address: string, hostname: string, policy: TargetPolicy): string | null {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (policy.allowedHosts.some((h) => h.toLowerCase() === host || inCidr(address, h))) return null;
  const cls = classifyAddress(address);
  if (cls === 'public') return null;
  if (policy.allowPrivate && (cls === 'loopback' || cls === 'private')) return null;
  const what = { loopback: 'a loopback', private: 'a private-network', link_local: 'a link-local (e.g. cloud metadata)', unspecified: 'an unspecified', multicast: 'a multicast', reserved: 'a reserved' }[cls];
  return `${host} resolves to ${address}, ${what} address`;
}

export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Checks a callback_url for submission: http(s), no credentials in it (they would be stored and
 * shown with the task), and every address its host resolves to allowed. Throws 422
 * `webhook_target_refused` otherwise.
 */
export async function checkWebhookTarget(rawUrl: string, policy: TargetPolicy, resolve: Resolver = systemResolver): Promise<void> {
  const refuse = (reason: string): never => {
    throw new AppError('webhook_target_refused', `callback_url refused: ${reason}`, [{ field: 'parameters.callback_url', reason }]);
  };
  let url: URL;
  try { url = new URL(rawUrl); } catch { return refuse('not a valid URL'); }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse('only http and https are allowed');
  if (url.username || url.password) refuse('credentials in the URL are not allowed (they would be stored and shown with the task)');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) refuse('no host');
  let addresses: string[];
  if (net.isIP(host)) addresses = [host];
  else {
    try { addresses = await resolve(host); } catch (e) { return refuse(`the host ${host} cannot be resolved (${(e as NodeJS.ErrnoException).code ?? 'lookup failed'})`); }
    if (addresses.length === 0) refuse(`the host ${host} has no address`);
  }
  for (const a of addresses) {
    const why = refusalFor(a, host, policy);
    if (why) refuse(`${why}; set WEBHOOK_ALLOW_PRIVATE=true or list it in WEBHOOK_ALLOWED_HOSTS to allow it`);
  }
}
