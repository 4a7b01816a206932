// The page end to end, in Debian's headless chromium driven by playwright-core: a real
// `isolab serve` of the built page (dist/), two containers side by side, typed into.
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.ISOLAB_BIN ?? join(root, 'target', 'debug', 'isolab');
const shot = join(root, 'target', 'browser', 'page.png');

/** Start `isolab serve` on a free port; resolves to [process, url]. */
async function startServer() {
  const server = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--dist', join(root, 'dist'), '--grace', '1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = await once(server.stdout, 'data');
  const url = /http:\/\/[^/\s]+\//.exec(line.toString())?.[0];
  assert.ok(url, `no URL in ${line}`);
  return [server, url];
}

test('two containers side by side, each with its own hostname, PID 1 and terminal', async () => {
  const [server, url] = await startServer();
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1500, height: 900 } })).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('.conn.open', { timeout: 15000 });
    assert.ok(await page.isVisible('form.spec-form'), 'the form is shown');

    // What a terminal shows: xterm.js's DOM rows.
    const screen = (name) => page.$eval(`.pane:has(.pane-title:text-matches("^${name} "))`,
      (el) => [...el.querySelectorAll('.xterm-rows > div')].map((r) => r.textContent).join('\n'));
    const waitScreen = async (name, re) => {
      const end = Date.now() + 15000;
      let text = '';
      while (Date.now() < end) {
        text = await screen(name).catch(() => '');
        if (re.test(text)) return text;
        await page.waitForTimeout(100);
      }
      assert.fail(`terminal ${name}: ${re} not seen in:\n${text}`);
    };
    const type = async (name, text) => {
      await page.click(`.pane:has(.pane-title:text-matches("^${name} ")) .xterm-screen`);
      await page.keyboard.type(text);
      await page.keyboard.press('Enter');
    };

    for (const name of ['alpha', 'beta']) {
      await page.fill('input[name=name]', name);
      await page.fill('input[name=hostname]', name);
      await page.click('button[type=submit]');
      await page.waitForSelector(`.card[data-name="${name}"]`, { timeout: 15000 });
      await waitScreen(name, /[#$]\s*$/m);
    }
    for (const [name, other] of [['alpha', 'beta'], ['beta', 'alpha']]) {
      await type(name, 'hostname');
      const text = await waitScreen(name, new RegExp(`^${name}\\s*$`, 'm'));
      assert.ok(!new RegExp(`^${other}\\s*$`, 'm').test(text), `${other} seen in ${name}'s terminal`);
      await type(name, 'echo pid=$$');
      await waitScreen(name, /^pid=1\s*$/m);
    }
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    for (const name of ['alpha', 'beta']) {
      await page.click(`.card[data-name="${name}"] button.remove`);
      await page.waitForSelector(`.card[data-name="${name}"]`, { state: 'detached', timeout: 15000 });
    }
    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await browser.close();
    server.kill('SIGTERM');
    const [code] = await once(server, 'exit');
    assert.equal(code, 0, 'the server stops cleanly');
  }
});
