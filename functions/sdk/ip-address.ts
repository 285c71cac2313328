// IP addresses as numbers and bytes, parsed without regexes or splits: a hop parses the source address
// of every accepted connection and every PROXY header, so this sits on the per-connection path.

/** IPv4 as an unsigned 32-bit number; IPv6 as its 16 bytes in network order. */
export type IpAddress = { family: 4; v4: number } | { family: 6; bytes: Uint8Array };

const CODE_0 = 48;
const CODE_9 = 57;
const CODE_A = 97; // 'a'
const CODE_F = 102;
const CODE_UA = 65; // 'A'
const CODE_UF = 70;
const CODE_DOT = 46;
const CODE_COLON = 58;

/** Dotted quad to uint32, or -1. Leading zeros are rejected: "010" is octal to some parsers. */
export function parseIpv4(s: string, start = 0, end = s.length): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (parts < 4) {
    const partStart = i;
    let part = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < CODE_0 || c > CODE_9) break;
      part = part * 10 + (c - CODE_0);
      i++;
      if (i - partStart > 3) return -1;
    }
    const len = i - partStart;
    if (len === 0 || part > 255 || (len > 1 && s.charCodeAt(partStart) === CODE_0)) return -1;
    value = value * 256 + part;
    parts++;
    if (parts < 4) {
      if (i >= end || s.charCodeAt(i) !== CODE_DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

function hexValue(c: number): number {
  if (c >= CODE_0 && c <= CODE_9) return c - CODE_0;
  if (c >= CODE_A && c <= CODE_F) return c - CODE_A + 10;
  if (c >= CODE_UA && c <= CODE_UF) return c - CODE_UA + 10;
  return -1;
}

// Scratch for the eight 16-bit groups; parsing is synchronous, so one array serves every call.
const groups = new Uint16Array(8);

/**
 * Parses IPv6 text (with "::", an embedded dotted quad, and a "%zone" suffix that is ignored) into
 * out[offset..offset+16). Returns false, leaving out partly written, when the text is not IPv6.
 */
export function parseIpv6Into(s: string, out: Uint8Array, offset = 0): boolean {
  let end = s.indexOf("%");
  if (end < 0) end = s.length;
  if (end < 2) return false;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === CODE_COLON) {
    if (s.charCodeAt(1) !== CODE_COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (n === 8) return false;
    let j = i;
    let v = 0;
    while (j < end) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < end && s.charCodeAt(j) === CODE_DOT) {
      // Embedded IPv4: the last 32 bits, so it must end the text and leave room for two groups.
      if (n > 6) return false;
      const v4 = parseIpv4(s, i, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups[n++] = v;
    if (j === end) {
      i = j;
      break;
    }
    if (s.charCodeAt(j) !== CODE_COLON) return false;
    j++;
    if (j < end && s.charCodeAt(j) === CODE_COLON) {
      if (gap >= 0) return false;
      gap = n;
      j++;
    } else if (j === end) {
      return false; // a single trailing colon
    }
    i = j;
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    if (n > 7) return false;
    const tail = n - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k] as number;
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let k = 0; k < 8; k++) {
    const g = groups[k] as number;
    out[offset + 2 * k] = g >>> 8;
    out[offset + 2 * k + 1] = g & 0xff;
  }
  return true;
}

/** Parses either family; undefined when the text is neither. IPv4-mapped IPv6 stays IPv6 (see unmapIpv4). */
export function parseIp(s: string): IpAddress | undefined {
  if (s.indexOf(":") < 0) {
    const v4 = parseIpv4(s);
    return v4 < 0 ? undefined : { family: 4, v4 };
  }
  const bytes = new Uint8Array(16);
  return parseIpv6Into(s, bytes) ? { family: 6, bytes } : undefined;
}

/** True for ::ffff:0:0/96, the form a dual-stack Node socket reports IPv4 peers in. */
export function isIpv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let k = 0; k < 10; k++) if (bytes[offset + k] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** ::ffff:a.b.c.d becomes a.b.c.d; everything else is returned as is. */
export function unmapIpv4(ip: IpAddress): IpAddress {
  if (ip.family === 4 || !isIpv4Mapped(ip.bytes)) return ip;
  return { family: 4, v4: readV4(ip.bytes, 12) };
}

/** The uint32 stored big-endian at bytes[offset..offset+4). */
export function readV4(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] as number) * 0x1000000 +
    (((bytes[offset + 1] as number) << 16) |
      ((bytes[offset + 2] as number) << 8) |
      (bytes[offset + 3] as number))
  );
}

export function formatIpv4(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 0xff}.${(v4 >>> 8) & 0xff}.${v4 & 0xff}`;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (2+) of zero groups as "::". */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  if (isIpv4Mapped(bytes, offset)) return `::ffff:${formatIpv4(readV4(bytes, offset + 12))}`;
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let k = 0; k <= 8; k++) {
    const zero = k < 8 && bytes[offset + 2 * k] === 0 && bytes[offset + 2 * k + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = k;
    } else if (runStart >= 0) {
      if (k - runStart > bestLen) {
        bestStart = runStart;
        bestLen = k - runStart;
      }
      runStart = -1;
    }
  }
  let out = "";
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      out += "::";
      k += bestLen - 1;
      continue;
    }
    if (out !== "" && !out.endsWith(":")) out += ":";
    out += (((bytes[offset + 2 * k] as number) << 8) | (bytes[offset + 2 * k + 1] as number)).toString(16);
  }
  return out;
}

export function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIpv4(ip.v4) : formatIpv6(ip.bytes);
}
