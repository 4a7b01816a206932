// The live view end to end, in Debian's headless chromium driven by playwright-core: a real
// `isolab serve` of the built page (dist/). The UTS preset makes alpha and beta; `hostname
// gamma` typed in alpha changes alpha's badge only, and the namespace matrix gives each uts
// namespace its own colour. Then the shared-PID preset replaces them, and the pid row shows
// alpha's and beta's cells in one colour.
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  launchBrowser, openPage, screenshot, startServer, stopServer, terminals, until,
} from './harness.mjs';

const shot = screenshot('view');

test('presets, the live hostname badge and the namespace matrix', async () => {
  const [server, url] = await startServer();
  const browser = await launchBrowser();
  try {
    const [page, errors] = await openPage(browser, url, { width: 1500, height: 1100 });

    const { pane, screen, waitScreen, type } = terminals(page);
    const badge = (name) => page.textContent(`${pane(name)} .hostname-badge`);
    const cell = (kind, target) => `.ns-matrix tr[data-kind="${kind}"] td[data-target="${target}"]`;
    const colour = (kind, target) => page.$eval(cell(kind, target), (el) => getComputedStyle(el).backgroundColor);
    const inode = (kind, target) => page.getAttribute(cell(kind, target), 'data-inode');
    const runPreset = async (id) => {
      await page.click(`button[data-preset="${id}"]`);
      await until(page, () => page.getAttribute('.preset-phase', 'data-phase'),
        (p) => p === 'ready' || p === 'failed', `preset ${id} finishes`, 30000);
      const phase = await page.getAttribute('.preset-phase', 'data-phase');
      assert.equal(phase, 'ready', await page.textContent('.preset-phase'));
      assert.ok(await page.isVisible(`.preset-hint[data-preset="${id}"]`), 'its hint is shown');
    };

    // UTS isolation: alpha and beta, each with SYS_ADMIN in its own user namespace.
    await runPreset('uts');
    for (const name of ['alpha', 'beta']) {
      await waitScreen(name, /[#$]\s*$/m);
      // The badge is the live view's: it appears with the first view.
      await until(page, () => badge(name), (t) => t?.trim() === name, `${name}'s badge`);
    }
    assert.match(await page.textContent('.preset-hint'), /CAP_SYS_ADMIN/);

    await type('alpha', 'hostname gamma');
    await until(page, () => badge('alpha'), (t) => t?.trim() === 'gamma', "alpha's badge says gamma", 5000);
    assert.equal((await badge('beta')).trim(), 'beta', "beta's badge is unchanged");
    assert.match(await page.getAttribute(`${pane('alpha')} .hostname-badge`, 'class'), /flash-[ab]/, 'it flashed');
    assert.doesNotMatch(await page.getAttribute(`${pane('beta')} .hostname-badge`, 'class'), /flash/);
    const alphaScreen = await screen('alpha');
    assert.doesNotMatch(alphaScreen, /not permitted|denied/i, 'sethostname was allowed');
    await type('alpha', 'hostname');
    await waitScreen('alpha', /^gamma\s*$/m);

    // Every target's uts namespace is its own: three inodes, three colours.
    for (const target of ['host', 'container:alpha', 'container:beta']) {
      await until(page, () => inode('uts', target), Boolean, `the uts cell of ${target}`);
    }
    const uts = await Promise.all(['host', 'container:alpha', 'container:beta'].map((t) => colour('uts', t)));
    assert.equal(new Set(uts).size, 3, `uts colours ${uts}`);
    const utsInodes = await Promise.all(['host', 'container:alpha', 'container:beta'].map((t) => inode('uts', t)));
    assert.equal(new Set(utsInodes).size, 3, `uts inodes ${utsInodes}`);
    // The host card has the kernel, and the process count once the host's view came.
    await until(page, () => page.textContent('.host-card'), (t) => /\d+ in all/.test(t), 'the host card');

    // A sparkline has drawn a few points by now.
    await until(page, () => page.getAttribute('.stack[data-container="alpha"] .spark.memory polyline', 'points'),
      (p) => (p ?? '').split(' ').length >= 2, "alpha's memory sparkline");
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    // PID isolation: each container's ps sees only its own processes, numbered from 1; the
    // host sees both shells under other numbers.
    await runPreset('pid');
    await until(page, () => page.$$eval('.stack', (s) => s.map((e) => e.dataset.container).join(',')),
      (names) => names === 'alpha,beta', 'alpha and beta anew');
    for (const name of ['alpha', 'beta']) {
      await waitScreen(name, /[#$]\s*$/m);
      await type(name, 'ps -o pid,comm');
      const text = await waitScreen(name, /^\s*\d+\s+ps\s*$/m);
      const pids = [...text.matchAll(/^\s*(\d+)\s+(sh|ps)\s*$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(pids.slice(0, 1), [1], `${name}'s shell is PID 1 in: ${text}`);
      assert.ok(pids.every((p) => p < 20), `${name} sees only its own small pids: ${text}`);
    }
    assert.notEqual(await inode('pid', 'container:alpha'), await inode('pid', 'container:beta'));
    await until(page, () => page.textContent('.host-card'), (t) => /([2-9]|\d\d+) of them this session's/.test(t),
      "the host card counts both containers' processes");

    // Shared PID namespace: the preset removes alpha and beta first, then beta joins alpha's.
    await runPreset('shared-pid');
    await until(page, () => page.$$eval('.stack', (s) => s.map((e) => e.dataset.container).join(',')),
      (names) => names === 'alpha,beta', 'alpha and beta anew');
    for (const target of ['container:alpha', 'container:beta']) {
      await until(page, () => inode('pid', target), Boolean, `the pid cell of ${target}`);
    }
    assert.equal(await inode('pid', 'container:alpha'), await inode('pid', 'container:beta'), 'one pid namespace');
    assert.equal(await colour('pid', 'container:alpha'), await colour('pid', 'container:beta'), 'one colour');
    assert.notEqual(await colour('pid', 'host'), await colour('pid', 'container:alpha'));
    assert.match(await page.getAttribute(cell('pid', 'container:beta'), 'title'), /shared with alpha/);
    await waitScreen('beta', /[#$]\s*$/m);
    await type('beta', 'ps');
    // beta's ps lists alpha's shell (PID 1) as well as its own.
    await waitScreen('beta', /^\s*1\s+root\s+sh\s*$/m);

    for (const name of ['alpha', 'beta']) {
      await page.click(`.card[data-name="${name}"] button.remove`);
      await page.waitForSelector(`.card[data-name="${name}"]`, { state: 'detached', timeout: 15000 });
    }
    assert.equal(await page.$$eval('.ns-matrix thead th', (th) => th.length), 2, 'the matrix is back to the host');
    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await browser.close();
    await stopServer(server);
  }
});
