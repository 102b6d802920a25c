/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The bundle is served by `pae serve` at / (services/api/static.py); in development, `npx vite` proxies
// /api to a running `pae serve` on port 8000.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // React, ECharts (tree-shaken) and TanStack in one ~940 kB chunk (~305 kB gzipped), cached for a year.
    chunkSizeWarningLimit: 1100,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
