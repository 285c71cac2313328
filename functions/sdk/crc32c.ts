// CRC32C (Castagnoli), the checksum PROXY v2's PP2_TYPE_CRC32C carries. Node's zlib only has the
// IEEE polynomial, so this is the small table-driven form; headers are at most 1 KiB.
const POLY_REFLECTED = 0x82f63b78;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC32C of bytes[start..end); pass a previous result as `crc` to continue over several ranges. */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
