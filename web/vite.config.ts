/**
 * Builds the dashboard into web/dist, which the API server serves: index.html at `/` and hashed
 * assets under /assets/ (cached for a year by the server, so names must change with content).
 */
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    // `vite --config web/vite.config.ts` against a running service on the default port.
    proxy: { '/api': 'http://127.0.0.1:8000', '/queue': 'http://127.0.0.1:8000', '/health': 'http://127.0.0.1:8000' },
  },
});
