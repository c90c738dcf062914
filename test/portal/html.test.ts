import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { escapeHtml, html, isSafeHtml, toHtml } from '../../src/server/portal/html.js';

const decode = (text: string) =>
  text.replace(/&(lt|gt|quot|#39|#96|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", '#96': '`', amp: '&' })[e]!);

describe('the portal escaping helper', () => {
  test('interpolated text can close neither an element nor a quoted attribute', () => {
    const evil = `"><script>alert(1)</script><img src=x onerror='x'>&amp;`;
    const out = toHtml(html`<p title="${evil}">${evil}</p>`);
    assert.equal(out, '<p title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&amp;amp;">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&amp;amp;</p>');
  });

  test('markup made by the tag is kept, arrays are joined, empty values vanish', () => {
    const items = ['a<b', 'c'].map((x) => html`<li>${x}</li>`);
    assert.equal(toHtml(html`<ul>${items}</ul>`), '<ul><li>a&lt;b</li><li>c</li></ul>');
    assert.equal(toHtml(html`${null}|${undefined}|${false}|${0}|${true}`), '|||0|true');
    assert.equal(toHtml(html`${[[html`<i>x</i>`, '<'], '>']}`), '<i>x</i>&lt;&gt;');
  });

  test('an object that merely looks like SafeHtml is escaped', () => {
    const fake = { text: '<b>bold</b>' } as never;
    assert.equal(isSafeHtml(fake), false);
    assert.doesNotMatch(toHtml(html`${fake}`), /<b>/);
    assert.equal(isSafeHtml(html`x`), true);
  });

  test('any string round-trips through escaping and never yields markup characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = escapeHtml(s);
        assert.doesNotMatch(out, /[<>"'`]/);
        assert.equal(decode(out), s);
      }),
      { numRuns: 500 },
    );
  });
});
