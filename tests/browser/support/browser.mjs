// Runs one browser scenario: a fresh chatd (port 0, temp data dir) serving the
// reference UI, and Debian's headless Chromium driven by playwright-core.
//
// scenario(name, { args, env }, body) calls body({ srv, base, context,
// newPage, newContext, pages }) and afterwards fails the test if any page
// threw an uncaught error or opened a dialog. newContext() makes another
// browser context (its own cookies and storage: another person);
// newPage(label, ctx) opens a page in one (default: `context`). When the body
// fails it saves, for every page, a screenshot and the page's console log
// (plus chatd's stderr and the error) to $CHATD_BROWSER_ARTIFACTS (default:
// <tmp>/chatd-browser-artifacts), and keeps chatd's data dir. Chromium, every
// context and chatd are always closed.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startChatd } from './chatd.mjs';

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (err) {
  throw new Error(`playwright-core is not installed: run \`npm ci\` in tests/browser (${err.message})`);
}

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function artifactsDir() {
  return process.env.CHATD_BROWSER_ARTIFACTS || path.join(os.tmpdir(), 'chatd-browser-artifacts');
}

function slug(s) {
  return s.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'scenario';
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 60000,
  });
}

export async function scenario(name, { args = [], env } = {}, body) {
  const srv = await startChatd({ args, env });
  const started = Date.now();
  const pages = [];
  let browser;
  let context;
  const contexts = [];
  let failed = false;

  const newContext = async () => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    ctx.setDefaultTimeout(30000);
    contexts.push(ctx);
    return ctx;
  };

  const newPage = async (label = `page${pages.length + 1}`, ctx = context) => {
    const page = await ctx.newPage();
    const rec = { label, page, log: [], errors: [], dialogs: [] };
    const stamp = () => `+${String(Date.now() - started).padStart(6)}ms`;
    page.on('console', (m) => rec.log.push(`${stamp()} ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => {
      rec.errors.push(e.message);
      rec.log.push(`${stamp()} pageerror: ${e.stack || e.message}`);
    });
    page.on('dialog', (d) => {
      rec.dialogs.push(`${d.type()}: ${d.message()}`);
      rec.log.push(`${stamp()} dialog ${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
    page.on('requestfailed', (r) => rec.log.push(`${stamp()} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText || ''}`));
    page.on('close', () => rec.log.push(`${stamp()} page closed`));
    pages.push(rec);
    return page;
  };

  try {
    browser = await launchBrowser();
    context = await newContext();
    await body({ srv, base: srv.baseUrl, context, newPage, newContext, pages });
    const problems = pages.flatMap((p) => [
      ...p.errors.map((e) => `${p.label}: uncaught error: ${e}`),
      ...p.dialogs.map((d) => `${p.label}: dialog opened: ${d}`),
    ]);
    if (problems.length) throw new Error(`the page misbehaved:\n${problems.join('\n')}`);
  } catch (err) {
    failed = true;
    await saveArtifacts(name, pages, srv, err);
    throw err;
  } finally {
    for (const ctx of contexts) await ctx.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await srv.stop();
    if (!failed) await srv.cleanup();
  }
}

async function saveArtifacts(name, pages, srv, err) {
  const dir = artifactsDir();
  const base = `${slug(name)}-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true });
    for (const p of pages) {
      const file = path.join(dir, `${base}-${p.label}`);
      if (!p.page.isClosed()) {
        await p.page.screenshot({ path: `${file}.png`, fullPage: true, timeout: 10000 }).catch((e) => {
          p.log.push(`screenshot failed: ${e.message}`);
        });
      }
      writeFileSync(`${file}.console.log`, `${p.log.join('\n')}\n`);
    }
    writeFileSync(path.join(dir, `${base}.chatd-stderr.log`), `data dir: ${srv.dataDir}\n${srv.stderrText()}`);
    writeFileSync(path.join(dir, `${base}.error.txt`), `${err.stack || err}\n`);
    console.error(`[browser] ${name} failed: screenshots and console logs in ${dir} (${base}-*)`);
  } catch (e) {
    console.error(`[browser] could not write artifacts to ${dir}: ${e.message}`);
  }
  for (const p of pages) {
    console.error(`----- ${p.label} console (last 60 lines) -----\n${p.log.slice(-60).join('\n')}`);
  }
}
