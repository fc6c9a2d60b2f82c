// The AI SDK page (../ai_sdk_page/): its app.js bundled with the `ai` package
// by esbuild into one browser ES module, beside a copy of its index.html, in a
// new temporary directory that chatd serves with `--web-dir` (same origin as
// its API; chatd's CSP allows only 'self' scripts, so nothing is inline).
// Nothing is fetched from the network: the bundle comes from node_modules.
//
// buildAiSdkPage() returns { dir, bytes, cleanup() }.

import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ai_sdk_page');

export async function buildAiSdkPage() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new Error(`esbuild is not installed: run \`npm ci\` in tests/browser (${err.message})`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatd-ai-sdk-page-'));
  try {
    await esbuild.build({
      entryPoints: [path.join(PAGE, 'app.js')],
      outfile: path.join(dir, 'app.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'warning',
    });
    await copyFile(path.join(PAGE, 'index.html'), path.join(dir, 'index.html'));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { size } = await stat(path.join(dir, 'app.js'));
  return { dir, bytes: size, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
