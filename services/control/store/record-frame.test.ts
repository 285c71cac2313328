// The log framing detects every kind of damaged tail; the CRC fallback agrees with zlib.
import { describe, expect, it } from "vitest";
import { crc32, crc32Fallback, decodeFrames, encodeFrame } from "./record-frame.js";

describe("record frames", () => {
  const frames = [encodeFrame({ rev: 1 }), encodeFrame({ rev: 2, text: "é✓" }), encodeFrame({ rev: 3 })];
  const whole = Buffer.concat(frames);
  const lastAt = (frames[0]?.length ?? 0) + (frames[1]?.length ?? 0);

  it("decodes what it encodes", () => {
    const decoded = decodeFrames(whole);
    expect(decoded.problem).toBeUndefined();
    expect(decoded.validBytes).toBe(whole.length);
    expect(decoded.frames.map((f) => f.value)).toEqual([{ rev: 1 }, { rev: 2, text: "é✓" }, { rev: 3 }]);
  });

  const damaged: Array<{ name: string; bytes: () => Buffer; problem: RegExp }> = [
    { name: "torn header", bytes: () => whole.subarray(0, lastAt + 5), problem: /truncated header/ },
    { name: "torn payload", bytes: () => whole.subarray(0, whole.length - 1), problem: /truncated record/ },
    {
      name: "flipped payload byte",
      bytes: () => {
        const b = Buffer.from(whole);
        b[b.length - 2] = (b[b.length - 2] as number) ^ 1;
        return b;
      },
      problem: /checksum/,
    },
    {
      name: "flipped length byte",
      bytes: () => {
        const b = Buffer.from(whole);
        b[lastAt + 3] = (b[lastAt + 3] as number) ^ 1;
        return b;
      },
      problem: /checksum|truncated/,
    },
    {
      name: "zero-filled tail",
      bytes: () => Buffer.concat([whole.subarray(0, lastAt), Buffer.alloc(64)]),
      problem: /zero length/,
    },
  ];

  it.each(damaged)("stops at a damaged last frame: $name", ({ bytes, problem }) => {
    const decoded = decodeFrames(bytes());
    expect(decoded.problem).toMatch(problem);
    expect(decoded.validBytes).toBe(lastAt);
    expect(decoded.frames).toHaveLength(2);
  });

  it("the table CRC agrees with zlib's", () => {
    for (const text of ["", "a", "123456789", "catena".repeat(100)]) {
      const data = Buffer.from(text);
      expect(crc32Fallback(data)).toBe(crc32(data));
      expect(crc32Fallback(data, 12345)).toBe(crc32(data, 12345));
    }
    expect(crc32Fallback(Buffer.from("123456789"))).toBe(0xcbf43926);
  });
});
