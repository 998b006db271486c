// @ts-check
// typescript-eslint, type-aware: unused variables/imports and promises nobody awaits are errors.
// Unused exports and files are knip's job (knip.json); formatting is prettier's.
import eslint from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    // Outside tsconfig.json (the type-aware rules need its program): build output, the app-team
    // example (its own package), generated service code, and the plain-JS entry and configs.
    ignores: [
      "node_modules/",
      "dist/",
      "dist-pkg/",
      ".slipway/",
      "examples/",
      "**/*.js",
      "**/*.cjs",
      "**/*.mjs",
      "**/*.mts",
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        // `_name` marks a value left out on purpose (a destructured field dropped, an unused parameter).
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
      // Engine state, rendered manifests and provider outputs are untyped JSON; `any` is how the
      // adapters read them (each checks what it reads and throws a typed error otherwise).
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  {
    // The normal-quantile coefficients (Wichura's AS241) as published: their extra digits round to
    // the nearest double, which is the value intended.
    files: ["src/analysis/stats.ts"],
    rules: { "no-loss-of-precision": "off" },
  },
);
