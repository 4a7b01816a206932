// What the browser tests share: a real `isolab serve` of the built page (dist/) on a free port,
// Debian's headless chromium driven by playwright-core, polling, and the terminals of a page.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.ISOLAB_BIN ?? join(root, 'target', 'debug', 'isolab');

/** Where a test saves its screenshot. */
export const screenshot = (name) => join(root, 'target', 'browser', `${name}.png`);

/** Start `isolab [global…] serve [serveArgs…]` on a free port; resolves to [process, url]. */
export async function startServer(global = [], serveArgs = []) {
  // Admission off: the suites before this one may have loaded the host (load average).
  const server = spawn(bin, [...global, 'serve', '--listen', '127.0.0.1:0', '--dist', join(root, 'dist'),
    '--grace', '1', '--max-load', '1000', '--min-free-memory', '0', '--min-free-disk', '0',
    '--max-sessions-per-ip', '0', ...serveArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(server.stdout, 'data');
  const url = /http:\/\/[^/\s]+\//.exec(line.toString())?.[0];
  assert.ok(url, `no URL in ${line}`);
  return [server, url];
}

/** Stop a server with SIGTERM and check that it stops cleanly. */
export async function stopServer(server) {
  server.kill('SIGTERM');
  const [code] = await once(server, 'exit');
  assert.equal(code, 0, 'the server stops cleanly');
}

/** Chromium as the brief says: headless, no sandbox, no GPU, no background traffic. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page at `url`, connected; resolves to [page, errors] (errors: uncaught page errors). */
export async function openPage(browser, url, viewport = { width: 1500, height: 1100 }) {
  const page = await (await browser.newContext({ viewport })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('.conn.open', { timeout: 15000 });
  return [page, errors];
}

/** Polls `get` until `ok(value)`; fails with `what`, the last value and the page's notice. */
export async function until(page, get, ok, what, ms = 15000) {
  const end = Date.now() + ms;
  let value;
  while (Date.now() < end) {
    value = await get().catch((e) => `(${e.message.split('\n')[0]})`);
    if (ok(value)) return value;
    await page.waitForTimeout(100);
  }
  const notice = await page.textContent('.notice').catch(() => null);
  assert.fail(`${what}: last seen ${JSON.stringify(value)}${notice ? `; the page says: ${notice}` : ''}`);
}

/** A container's terminal, by its name: what it shows (xterm.js's DOM rows), and typing. */
export function terminals(page) {
  const pane = (name) => `.pane:has(.pane-title:text-matches("^${name} "))`;
  // xterm.js stops drawing a terminal that is out of view (an IntersectionObserver pauses its
  // renderer): bring the pane into view before reading its rows.
  const screen = async (name) => {
    await page.locator(pane(name)).scrollIntoViewIfNeeded({ timeout: 2000 });
    return page.$eval(pane(name),
      (el) => [...el.querySelectorAll('.xterm-rows > div')].map((r) => r.textContent).join('\n'));
  };
  const waitScreen = (name, re) => until(page, () => screen(name), (t) => re.test(t), `terminal ${name}: ${re}`);
  const type = async (name, text) => {
    await page.click(`${pane(name)} .xterm-screen`);
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  };
  return { pane, screen, waitScreen, type };
}
