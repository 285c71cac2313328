// MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units. Endpoint keys and source addresses are
// ASCII, where this equals hashing the bytes, and reading char codes avoids encoding a Buffer per
// connection. Envoy uses xxHash64; the consistent-hash semantics here are Envoy's, the hash values
// (and so the exact tables) are not.
export function murmur3(s: string, seed = 0): number {
  let h = seed >>> 0;
  const n = s.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (s.charCodeAt(i) & 0xff) |
      ((s.charCodeAt(i + 1) & 0xff) << 8) |
      ((s.charCodeAt(i + 2) & 0xff) << 16) |
      ((s.charCodeAt(i + 3) & 0xff) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= (s.charCodeAt(blocks + 2) & 0xff) << 16;
    if (tail >= 2) k ^= (s.charCodeAt(blocks + 1) & 0xff) << 8;
    k ^= s.charCodeAt(blocks) & 0xff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
