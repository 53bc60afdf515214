import { describe, expect, it } from 'vitest';
import { formatTable } from './table.ts';
import { displayWidth, padToWidth, truncateToWidth, visible } from './text.ts';

describe('visible', () => {
  it('escapes terminal control sequences, C1 controls and bidi overrides; leaves other text as it is', () => {
    expect(visible('\u001b[2J\u001b]0;pwned\u0007')).toBe('\\e[2J\\e]0;pwned\\x07');
    expect(visible('a\rb\u009b1m\u202eevil\u0000')).toBe('a\\rb\\x9b1m\\u202eevil\\x00');
    expect(visible('naïve 進捗 🎉 "quotes" \\ back')).toBe('naïve 進捗 🎉 "quotes" \\ back');
  });

  it('keeps newline and tab only in multi-line text', () => {
    expect(visible('a\n\tb\u001b')).toBe('a\\n\\tb\\e');
    expect(visible('a\n\tb\u001b', { multiline: true })).toBe('a\n\tb\\e');
  });

  it('is idempotent: escaped text has nothing left to escape', () => {
    const once = visible('\u001b[31m\u0007\u2028');
    expect(visible(once)).toBe(once);
  });
});

describe('displayWidth', () => {
  it('counts terminal cells: wide CJK and emoji 2, combining and zero-width 0, sequences as one picture', () => {
    const cases: [string, number][] = [
      ['abc', 3],
      ['進捗', 4],
      ['한국어', 6],
      ['ａｂ', 4],
      ['ｱｲｳ', 3],
      ['e\u0301', 1],
      ['\u200b', 0],
      ['🎉', 2],
      ['👍🏽', 2],
      ['👨‍👩‍👧', 2],
      ['🇯🇵🇺🇸', 4],
      ['1️⃣', 2],
      ['©', 1],
      ['©️', 2],
      ['→│¼Ω', 4],
    ];
    for (const [text, width] of cases) expect(displayWidth(text), JSON.stringify(text)).toBe(width);
  });

  it('pads and truncates by cells without splitting a character or a sequence', () => {
    expect(padToWidth('進捗', 6)).toBe('進捗  ');
    expect(truncateToWidth('進捗は完了しました', 9)).toBe('進捗は完…');
    expect(truncateToWidth('👨‍👩‍👧👨‍👩‍👧👨‍👩‍👧', 5)).toBe('👨‍👩‍👧👨‍👩‍👧…');
    expect(truncateToWidth('cafe\u0301 au lait', 5)).toBe('cafe\u0301…');
    expect(truncateToWidth('short', 10)).toBe('short');
  });
});

describe('formatTable', () => {
  it('aligns columns by display width and escapes control characters in cells', () => {
    const table = formatTable([
      ['ID', 'NOTE', 'LAST'],
      ['a', '進捗🎉', 'x'],
      ['b', 'plain', 'y'],
      ['c', 'bad\u001b[2J\nline', 'z'],
    ]).split('\n');
    const lastColumn = table.map((line) => displayWidth(line.slice(0, line.lastIndexOf('  ') + 2)));
    expect(new Set(lastColumn).size).toBe(1);
    expect(table[3]).toBe('c   bad\\e[2J\\nline  z');
  });
});
