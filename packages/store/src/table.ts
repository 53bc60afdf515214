import { displayWidth, padToWidth, visible } from './text.ts';

/**
 * Aligns rows into columns separated by two spaces; the first row is the header. Cells are one
 * line each with control characters made visible (`visible`), and columns are measured in terminal
 * cells (`displayWidth`: CJK and emoji take two).
 */
export function formatTable(rows: string[][]): string {
  const cells = rows.map((row) => row.map((cell) => visible(cell)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell))));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : padToWidth(cell, widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
