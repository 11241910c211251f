import { defineConfig } from "vite";

// Served under /app (the local gateway locally, CloudFront on AWS); no source maps shipped.
export default defineConfig({
  base: "/app/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
});
