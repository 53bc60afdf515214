/**
 * Text shown to a person: stored text (a worker's message, an agent's output) may hold terminal
 * control sequences; printed raw they clear the screen, fake output or retitle the terminal. Every
 * text renderer passes stored text through `visible`, and the CLI passes its whole text output
 * through it once more. Columns are measured in terminal cells (`displayWidth`), not characters.
 */

// C0 controls, DEL, C1 controls (U+009B is a CSI on its own in some terminals), and the invisible
// characters that reorder or break a line when displayed (bidi embeddings, overrides and isolates;
// line and paragraph separators).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const CONTROL_EXCEPT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\u001b': '\\e' };

function escape(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * Renders control characters visibly: ESC as `\e`, CR as `\r`, others as `\xNN` (C0, DEL, C1) or
 * `\uNNNN` (bidi controls, line separators). With `multiline` (a message body shown on several
 * lines), newline and tab are kept; otherwise they are escaped too. Everything else is unchanged,
 * so text without control characters comes back as it was.
 */
export function visible(text: string, options: { multiline?: boolean } = {}): string {
  const pattern = options.multiline === true ? CONTROL_EXCEPT_LINES : CONTROL;
  pattern.lastIndex = 0;
  return pattern.test(text) ? text.replace(pattern, escape) : text;
}

// East Asian Wide and Fullwidth code points (Unicode 15 EastAsianWidth.txt, W and F), merged into
// ranges; emoji shown as pictures are matched separately (EMOJI) since most of them are W too.
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x2329, 0x232a],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4],
  [0x16ff0, 0x16ff1],
  [0x17000, 0x18cd5],
  [0x18d00, 0x18d08],
  [0x1aff0, 0x1b2fb],
  [0x1f200, 0x1f202],
  [0x1f210, 0x1f23b],
  [0x1f240, 0x1f248],
  [0x1f250, 0x1f251],
  [0x1f260, 0x1f265],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [from, to] = WIDE[mid] as readonly [number, number];
    if (cp < from) hi = mid - 1;
    else if (cp > to) lo = mid + 1;
    else return true;
  }
  return false;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const PRESENTED = /^\p{Emoji_Presentation}$/u;
const PICTOGRAPHIC = /^\p{Extended_Pictographic}$/u;
const EMOJI = /^\p{Emoji}$/u;
// Shows nothing on its own: combining marks, format characters (zero-width space, joiners, tags),
// variation selectors.
const ZERO = /^[\p{Mn}\p{Me}\p{Cf}]$/u;

/**
 * Cells taken by each code point of `text`, in order, following what terminals do with
 * sequences: a character joined by ZWJ to the picture before it, an emoji modifier (skin tone)
 * and the second regional indicator of a flag add nothing; VS16 turns a one-cell symbol that has
 * an emoji form into a two-cell picture. (Intl.Segmenter would find graphemes exactly, but loading
 * it costs more than a whole CLI call's own work.)
 */
function* cellWidths(text: string): Generator<[string, number]> {
  let joined = false;
  let flagHalf = false;
  let previous: { cp: number; width: number } | undefined;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    let width: number;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) width = 0;
    else if (cp < 0x7f) width = 1;
    else if (cp === 0xfe0f) width = previous !== undefined && previous.width === 1 && EMOJI.test(String.fromCodePoint(previous.cp)) ? 1 : 0;
    else if (joined && PICTOGRAPHIC.test(ch)) width = 0;
    else if (cp >= 0x1f3fb && cp <= 0x1f3ff)
      width = previous !== undefined && previous.width > 0 && PICTOGRAPHIC.test(String.fromCodePoint(previous.cp)) ? 0 : 2;
    else if (cp >= 0x1f1e6 && cp <= 0x1f1ff) width = (flagHalf = !flagHalf) ? 2 : 0;
    else if ((cp >= 0x1160 && cp <= 0x11ff) || ZERO.test(ch)) width = 0;
    else width = isWide(cp) || PRESENTED.test(ch) ? 2 : 1;
    if (!(cp >= 0x1f1e6 && cp <= 0x1f1ff)) flagHalf = false;
    joined = cp === 0x200d;
    if (cp === 0xfe0f) {
      if (previous !== undefined) previous.width += width;
    } else if (width > 0) previous = { cp, width };
    yield [ch, width];
  }
}

/**
 * How many terminal cells `text` takes on one line: CJK and other wide characters and emoji count
 * 2, combining marks and zero-width characters 0, a flag or a joined emoji sequence is one
 * picture. Printable ASCII is counted without further work.
 */
export function displayWidth(text: string): number {
  if (PRINTABLE_ASCII.test(text)) return text.length;
  let width = 0;
  for (const [, w] of cellWidths(text)) width += w;
  return width;
}

/** `text` padded with spaces to `width` terminal cells (unchanged when it is already that wide). */
export function padToWidth(text: string, width: number): string {
  const missing = width - displayWidth(text);
  return missing > 0 ? text + ' '.repeat(missing) : text;
}

/**
 * `text` cut to at most `max` terminal cells, ending in `…` when cut; never splits a character
 * or a grapheme (an emoji sequence, a letter with its accents).
 */
export function truncateToWidth(text: string, max: number): string {
  if (displayWidth(text) <= max) return text;
  let out = '';
  let width = 0;
  let pending = '';
  for (const [ch, w] of cellWidths(text)) {
    // What takes no cell belongs to the character before it: kept or cut together with it.
    if (w === 0) {
      pending += ch;
      continue;
    }
    if (width + w > max - 1) break;
    out += pending + ch;
    pending = '';
    width += w;
  }
  return `${out}${pending}…`;
}
