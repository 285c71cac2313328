import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "services/**/*.test.ts", "functions/**/*.test.ts", "xds/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers on shared ports ranges; a few files at a time keeps 2 cores usable.
    maxWorkers: 2,
  },
});
