import { describe, expect, it } from "vitest";
import { maskedName } from "./mask-painter";

describe("maskedName", () => {
  it("names the masked copy after the image, as a PNG, without stacking suffixes", () => {
    expect(maskedName("cat.jpg")).toBe("cat-mask.png");
    expect(maskedName("cat-mask.png")).toBe("cat-mask.png");
    expect(maskedName("cat-mask (3).png")).toBe("cat-mask.png");
    expect(maskedName("photos/dog.webp")).toBe("dog-mask.png");
    expect(maskedName(".png")).toBe("image-mask.png");
  });
});
