import { describe, expect, it } from 'vitest';
import { parseRoute, runHref, taskHref } from './router.ts';
import { SseParser } from './sse-parse.ts';

// The board's pure parts (no browser): its routes and its change-stream parser. The page itself
// is tested in chromium by test/board.test.ts.

describe('board routes', () => {
  it('parses every route and round-trips the hrefs it makes', () => {
    expect(parseRoute('')).toEqual({ page: 'runs' });
    expect(parseRoute('#/')).toEqual({ page: 'runs' });
    expect(parseRoute(runHref('R.1_x-y'))).toEqual({ page: 'run', run: 'R.1_x-y' });
    expect(parseRoute(taskHref('R1', 'T 2/3'))).toEqual({ page: 'task', run: 'R1', task: 'T 2/3' });
    expect(parseRoute('#/blocked')).toEqual({ page: 'blocked' });
    expect(parseRoute('#/work')).toEqual({ page: 'work' });
    expect(parseRoute('#/runs/R1/nope').page).toBe('unknown');
    expect(parseRoute('#/runs/%E0%A4%A').page).toBe('unknown');
  });
});

describe('the change stream parser', () => {
  it('finds events across chunk boundaries, CRLF included, and skips comments', () => {
    const text = ': hello\r\n\r\nevent: change\r\nid: 7\r\ndata: {"at":"x"}\r\n\r\nevent: change\nid: 8\ndata: {}\n\n: ping\n\n';
    for (let size = 1; size <= text.length; size++) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
      expect(got, `chunks of ${size}`).toEqual([
        { event: 'change', id: '7', data: '{"at":"x"}' },
        { event: 'change', id: '8', data: '{}' },
      ]);
    }
    const p = new SseParser();
    expect(p.push('event: change\nid: 9\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ event: 'change', id: '9', data: '' }]);
  });
});
