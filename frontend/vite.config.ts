// Vite runs with frontend/ as its root (the npm scripts `cd frontend` first), so every path
// here is relative to this folder. The backend serves frontend/dist at `/`.
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
