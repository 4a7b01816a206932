// The page end to end, in Debian's headless chromium driven by playwright-core: a real
// `isolab serve` of the built page (dist/), two containers side by side, typed into. The server
// keeps a warm pool (`--pool busybox=2`): the form's default shell takes pooled containers, and
// each must still be exactly the one asked for (its hostname, PID 1).
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  launchBrowser, openPage, screenshot, startServer, stopServer, terminals,
} from './harness.mjs';

const shot = screenshot('page');

test('two containers side by side, each with its own hostname, PID 1 and terminal', async () => {
  const [server, url] = await startServer([], ['--pool', 'busybox=2']);
  const metric = async (series) => {
    const text = await (await fetch(`${url}metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return Number(line?.split(' ')[1]);
  };
  for (let i = 0; i < 100 && (await metric('isolab_pool_ready')) !== 2; i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(await metric('isolab_pool_ready'), 2, 'the pool filled');
  const browser = await launchBrowser();
  try {
    const [page, errors] = await openPage(browser, url, { width: 1500, height: 900 });
    assert.ok(await page.isVisible('form.spec-form'), 'the form is shown');

    const { waitScreen, type } = terminals(page);

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
    assert.equal(await metric('isolab_pool_requests_total{result="hit"}'), 2, 'both came from the pool');
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    for (const name of ['alpha', 'beta']) {
      await page.click(`.card[data-name="${name}"] button.remove`);
      await page.waitForSelector(`.card[data-name="${name}"]`, { state: 'detached', timeout: 15000 });
    }
    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await browser.close();
    await stopServer(server);
  }
});
