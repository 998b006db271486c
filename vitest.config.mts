import { defineConfig } from "vitest/config";

// Three tiers, one runner. `npm test` runs them all (scripts/test-all.sh).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 30_000 } },
      {
        test: {
          name: "engine",
          include: ["test/engine/**/*.test.ts"],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          // Two files at a time: a file spends most of its time waiting on the engine,
          // a server or a pause, and files share nothing (each its own scratch project,
          // state, ports and cluster), so two fill this machine's two cores.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: "providers",
          include: ["test/providers/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
