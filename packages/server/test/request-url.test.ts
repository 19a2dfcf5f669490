/**
 * RequestUrl: the request target split into path and query by hand (the API's hot path), with
 * the absolute form and unparsable targets handled as WHATWG URL would route them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestUrl } from '../src/http/request-url.js';

describe('RequestUrl', () => {
  it('splits the path from the query and parses the query on first use', () => {
    const u = new RequestUrl('/connection/http_stream?cf_connect=%7B%22token%22%3A%22t%22%7D&x=1&x=2');
    assert.equal(u.pathname, '/connection/http_stream');
    assert.equal(u.searchParams.get('cf_connect'), '{"token":"t"}');
    assert.deepEqual(u.searchParams.getAll('x'), ['1', '2']);
    assert.equal(u.searchParams, u.searchParams, 'parsed once');
    assert.equal(new RequestUrl('/api/publish').pathname, '/api/publish');
    assert.equal(new RequestUrl('/api/publish').searchParams.size, 0);
    assert.equal(new RequestUrl('/?').pathname, '/');
  });

  it('routes the absolute form by its path, and an unparsable target nowhere', () => {
    const abs = new RequestUrl('http://bulwark.example:8000/api/publish?a=b');
    assert.equal(abs.pathname, '/api/publish');
    assert.equal(abs.searchParams.get('a'), 'b');
    assert.equal(new RequestUrl('*').pathname, '/*');
    assert.equal(new RequestUrl('http://[bad').pathname, '');
  });

  it('keeps dot segments and percent-encoding as sent (no route matches them)', () => {
    assert.equal(new RequestUrl('/admin/../api/publish').pathname, '/admin/../api/publish');
    assert.equal(new RequestUrl('/api/pub%6Cish').pathname, '/api/pub%6Cish');
  });
});
