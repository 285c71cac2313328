// Framing of the log and snapshot files: [u32 length][u32 crc32][JSON payload], big-endian.
// The checksum covers the length bytes and the payload, so a torn or garbled tail is detected.
import * as zlib from "node:zlib";

export const FRAME_HEADER_BYTES = 8;

type Crc32 = (data: Uint8Array, value?: number) => number;

// zlib.crc32 exists from Node 20.15; package.json allows 20.10, so keep a table fallback.
const nativeCrc32 = (zlib as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;
function tableCrc32(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~value >>> 0;
  for (const byte of data) crc = (table[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

export const crc32: Crc32 = nativeCrc32 ?? tableCrc32;

/** Exported for tests: the fallback must agree with zlib. */
export const crc32Fallback: Crc32 = tableCrc32;

export function encodeFrame(payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), "utf8");
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.writeUInt32BE(crc32(body, crc32(frame.subarray(0, 4))), 4);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export interface DecodedFrame {
  value: unknown;
  /** Byte offset of the frame's header in the buffer. */
  offset: number;
}

export interface DecodedFrames {
  frames: DecodedFrame[];
  /** Bytes from the start that hold whole, valid frames. */
  validBytes: number;
  /** Why decoding stopped before the end of the buffer, if it did. */
  problem?: string;
}

/** Decodes frames until the end or the first torn/corrupt one; never throws. */
export function decodeFrames(buf: Buffer): DecodedFrames {
  const frames: DecodedFrame[] = [];
  let offset = 0;
  const stop = (problem: string): DecodedFrames => ({ frames, validBytes: offset, problem });
  while (offset < buf.length) {
    if (buf.length - offset < FRAME_HEADER_BYTES) return stop("truncated header");
    const length = buf.readUInt32BE(offset);
    // A zero length would pass the checksum of a zero-filled tail.
    if (length === 0) return stop("zero length");
    const end = offset + FRAME_HEADER_BYTES + length;
    if (end > buf.length) return stop("truncated record");
    const body = buf.subarray(offset + FRAME_HEADER_BYTES, end);
    if (crc32(body, crc32(buf.subarray(offset, offset + 4))) !== buf.readUInt32BE(offset + 4)) {
      return stop("checksum mismatch");
    }
    let value: unknown;
    try {
      value = JSON.parse(body.toString("utf8"));
    } catch {
      return stop("unparseable payload");
    }
    frames.push({ value, offset });
    offset = end;
  }
  return { frames, validBytes: offset };
}
