// Images end to end, in Debian's headless chromium driven by playwright-core: a real
// `isolab serve` of the built page (dist/). The build panel builds the example Dockerfile as
// `layered`: the stack grows one layer at a time, and ends as busybox's layers plus one per RUN,
// in order. A container of `layered` with an empty command runs the image's CMD (`cat /two`).
// Then a busybox shell `alpha` adds /new and deletes /etc/group, and its diff says so.
// The server gets a data root of its own (its store starts with the built-in busybox only),
// so that `layered` is this run's: a server refuses to rebuild an image another session made.
// Run by `cargo xtask test` as `node --test tests/browser/` (root, after `trunk build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  launchBrowser, openPage, screenshot, startServer, stopServer, terminals, until,
} from './harness.mjs';

const shot = screenshot('images');

test('a build grows the layer stack, its image runs its CMD, and a diff lists a shell\'s changes', async (t) => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'isolab-images-test-'));
  const [server, url] = await startServer(['--data-root', dataRoot]);
  const browser = await launchBrowser();
  try {
    const [page, errors] = await openPage(browser, url, { width: 1500, height: 1100 });

    const { pane, screen, waitScreen, type } = terminals(page);
    const options = () => page.$$eval('select[name="image"] option', (o) => o.map((e) => e.value));
    const stack = () => page.$eval('.layer-stack', (el) => ({
      source: el.dataset.source,
      title: el.querySelector('.stack-title').textContent,
      // Top first, as drawn.
      layers: [...el.querySelectorAll('.layer')].map((l) => ({
        index: Number(l.dataset.index),
        createdBy: l.querySelector('.created-by').textContent,
        isNew: l.classList.contains('new'),
      })),
    }));

    // The picker is filled from `images` (asked on hello), busybox selected; the stack is its.
    await until(page, options, (o) => Array.isArray(o) && o.includes('busybox'), 'the picker lists busybox');
    assert.equal(await page.inputValue('select[name="image"]'), 'busybox');
    const base = await until(page, stack, (s) => s?.source === 'image' && s.layers.length > 0, "busybox's stack");
    const baseCount = base.layers.length;

    // Every count of layers the build's stack shows, as the DOM changes.
    await page.evaluate(() => {
      window.stackCounts = [];
      new MutationObserver(() => {
        const el = document.querySelector('.layer-stack[data-source="build"]');
        if (!el) return;
        const n = el.querySelectorAll('.layer').length;
        if (window.stackCounts.at(-1) !== n) window.stackCounts.push(n);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });

    await page.click('button.build-open');
    await page.fill('input[name="build-name"]', 'layered');
    const dockerfile = await page.inputValue('textarea[name="dockerfile"]');
    assert.match(dockerfile, /^FROM busybox\nRUN echo one > \/one\nRUN echo two > \/two && echo three > \/three\nRUN rm \/one\nCMD \["cat", "\/two"\]/);
    assert.match(await page.textContent('.build-hint'), /a && b.*one RUN, so one layer/s);
    await page.click('button.build');
    const phase = await until(page, () => page.getAttribute('.build-status', 'data-phase'),
      (p) => p === 'done' || p === 'failed', 'the build ends', 120000);
    if (phase !== 'done') {
      const why = await page.textContent('.build-error').catch(() => '');
      const log = await page.textContent('.build-log').catch(() => '');
      assert.fail(`the build failed: ${why}\n${log}`);
    }
    assert.match(await page.textContent('.build-log'), /echo one > \/one/, 'the log streamed');

    // The stack grew one layer at a time, up to busybox's plus three.
    const counts = await page.evaluate(() => window.stackCounts);
    assert.ok(counts.length >= 3, `counts seen during the build: ${counts}`);
    for (let i = 1; i < counts.length; i++) {
      assert.equal(counts[i] - counts[i - 1], 1, `one layer at a time: ${counts}`);
    }
    assert.equal(counts.at(-1), baseCount + 3, `counts seen during the build: ${counts}`);
    t.diagnostic(`layers on the build's stack, as it grew: ${counts.join(' → ')}`);

    // Now the stack is the image's: base layers, then one per RUN, in order, the new ones marked.
    const built = await until(page, stack, (s) => s?.source === 'image' && s.title === 'layered', "layered's stack");
    assert.equal(built.layers.length, baseCount + 3);
    const bottomFirst = [...built.layers].reverse();
    assert.deepEqual(bottomFirst.map((l) => l.index), [...bottomFirst.keys()], 'indices from the bottom');
    const made = bottomFirst.slice(baseCount);
    assert.deepEqual(made.map((l) => l.isNew), [true, true, true]);
    assert.ok(bottomFirst.slice(0, baseCount).every((l) => !l.isNew), 'the base layers are not new');
    for (const [layer, text] of made.map((l, i) => [l, ['echo one > /one', 'echo two > /two && echo three > /three', 'rm /one'][i]])) {
      assert.ok(layer.createdBy.includes(text), `${JSON.stringify(layer.createdBy)} has ${text}`);
    }
    assert.match(await page.textContent('.image-config tr[data-key="CMD"]'), /\["cat", "\/two"\]/);
    assert.ok((await options()).includes('layered'), 'the picker lists layered');

    // A container of layered with no command runs its CMD: cat /two.
    await page.selectOption('select[name="image"]', 'busybox');
    await page.selectOption('select[name="image"]', 'layered');
    assert.match(await page.getAttribute('input[name="cmd"]', 'placeholder'), /cat \/two/);
    await page.fill('input[name="name"]', 'reader');
    await page.fill('input[name="cmd"]', '');
    await page.click('.spec-form button[type=submit]');
    await page.waitForSelector('.card[data-name="reader"]', { timeout: 15000 });
    await until(page, () => page.textContent('.card[data-name="reader"] header .badge.status'),
      (t) => /exited/.test(t ?? ''), 'reader exits');
    assert.equal((await page.textContent('.card[data-name="reader"] header .badge.status')).trim(), 'exited with code 0');
    assert.equal(await page.textContent('.card[data-name="reader"] dd:nth-of-type(1)'), 'layered');
    await waitScreen('reader', /^two\s*$/m);

    // A busybox shell: a file added, one deleted, and its diff.
    await page.selectOption('select[name="image"]', 'busybox');
    await page.fill('input[name="name"]', 'alpha');
    await page.fill('input[name="cmd"]', 'sh');
    await page.click('.spec-form button[type=submit]');
    await page.waitForSelector('.card[data-name="alpha"]', { timeout: 15000 });
    await waitScreen('alpha', /[#$]\s*$/m);
    await type('alpha', 'echo x > /new; rm /etc/group; echo done-$((20+22))');
    await waitScreen('alpha', /^done-42\s*$/m);
    await page.click('.card[data-name="alpha"] button.diff');
    const change = (kind, path) => `.card[data-name="alpha"] .diff-result li[data-kind="${kind}"][data-path="${path}"]`;
    await page.waitForSelector(change('A', '/new'), { timeout: 15000 });
    await page.waitForSelector(change('D', '/etc/group'), { timeout: 15000 });
    const colours = await Promise.all(['A', 'D'].map((k) => page.$eval(`${change(k, k === 'A' ? '/new' : '/etc/group')} .kind`,
      (el) => getComputedStyle(el).backgroundColor)));
    assert.notEqual(colours[0], colours[1], 'A and D in their own colours');

    // For the picture: layered's stack, the build panel with its log, alpha's diff.
    await page.selectOption('select[name="image"]', 'layered');
    await until(page, stack, (s) => s?.title === 'layered', "layered's stack again");
    await page.$eval('.workspace', (el) => { el.scrollTop = 0; });
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });

    for (const name of ['alpha']) {
      await page.click(`.card[data-name="${name}"] button.remove`);
      await page.waitForSelector(`.card[data-name="${name}"]`, { state: 'detached', timeout: 15000 });
    }
    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await browser.close();
    try {
      await stopServer(server);
    } finally {
      rmSync(dataRoot, { recursive: true, force: true });
    }
  }
});
