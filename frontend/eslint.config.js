// ESLint for the frontend, as Vite's React + TypeScript template sets it up, with typescript-eslint's
// type-aware rules. `npm run lint` runs it; `make lint` (and so `make test`) fails on any finding.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import { reactRefresh } from "eslint-plugin-react-refresh";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig([
  globalIgnores(["dist"]),
  {
    files: ["**/*.{ts,tsx}"],
    extends: [
      js.configs.recommended,
      tseslint.configs.recommendedTypeChecked,
      reactHooks.configs.flat.recommended,
      reactRefresh.configs.vite(),
    ],
    languageOptions: {
      ecmaVersion: 2022,
      globals: globals.browser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // useAsync(fn, deps) re-runs fn when deps change: check its callers' deps as an effect's.
      "react-hooks/exhaustive-deps": ["error", { additionalHooks: "^useAsync$" }],
    },
  },
  {
    // Build scripts and this file: plain Node modules, outside the TypeScript project.
    files: ["**/*.{js,mjs}"],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
]);
