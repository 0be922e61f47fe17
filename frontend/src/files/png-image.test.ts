import { describe, expect, it } from "vitest";
import { crc32, decodePngRgba, encodePngRgba, platformDeflate, platformInflate } from "./png-image";

// A 3x5 RGBA PNG written by a separate encoder, each row under another filter (None, Sub, Up,
// Average, Paeth), and the pixels Pillow decodes from it.
const FIXTURE =
  "iVBORw0KGgoAAAANSUhEUgAAAAMAAAAFCAYAAACAcVaiAAAATElEQVR4nAFBAL7/AHlCvfIhBvCEd2Lw8wHLTXZN/LqqBE6T7zgCJ3lkfRw9m+D9q+7mAwt8LXISIibyQZKp4QQjVtKxzAqGgGYfkCz0kR3Mdq7D2gAAAABJRU5ErkJggg==";
const FIXTURE_PIXELS = [
  121, 66, 189, 242, 33, 6, 240, 132, 119, 98, 240, 243, 203, 77, 118, 77, 199, 7, 32, 81, 21, 154, 15, 137, 242, 198, 218, 202, 227, 68,
  187, 49, 18, 69, 253, 111, 132, 223, 154, 215, 197, 179, 208, 118, 172, 14, 143, 83, 167, 53, 108, 136, 145, 63, 32, 246, 247, 45, 176, 34,
];

const bytesOf = (base64: string): Uint8Array => Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));

describe("PNG RGBA codec", () => {
  it("computes PNG's CRC-32 (the IEND chunk's is the well-known AE426082)", () => {
    expect((crc32(new TextEncoder().encode("IEND")) ^ 0xffffffff) >>> 0).toBe(0xae426082);
  });

  it("decodes every row filter as another encoder wrote it", async () => {
    const image = await decodePngRgba(bytesOf(FIXTURE), platformInflate);
    expect(image?.width).toBe(3);
    expect(image?.height).toBe(5);
    expect([...(image?.rgba ?? [])]).toEqual(FIXTURE_PIXELS);
  });

  it("round-trips RGB under alpha 0 exactly (what a canvas would lose)", async () => {
    const rgba = new Uint8Array([200, 100, 50, 0, 1, 2, 3, 255, 9, 8, 7, 128, 255, 255, 255, 0, 0, 0, 0, 0, 77, 66, 55, 1]);
    const png = await encodePngRgba(3, 2, rgba, platformDeflate);
    expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const back = await decodePngRgba(png, platformInflate);
    expect(back).toEqual({ width: 3, height: 2, rgba });
  });

  it("refuses a size that does not match the pixels, and leaves other formats to the browser", async () => {
    await expect(encodePngRgba(2, 2, new Uint8Array(12), platformDeflate)).rejects.toThrow("expected 2x2x4 = 16 bytes of RGBA, got 12");
    expect(await decodePngRgba(new Uint8Array([0xff, 0xd8, 0xff, 0, 0, 0, 0, 0, 0]), platformInflate)).toBeUndefined();
  });
});
