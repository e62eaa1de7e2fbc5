/** One training item as a JSON line: `{"item": k, "step": i, "tokens": [...], "text": "..."}`. */

/** The line of item `item` of iteration `step` (with its text when `decode` is given). */
export function itemJsonLine(
  item: number,
  step: number,
  tokens: number[],
  decode?: (ids: number[]) => string,
): string {
  const line: { item: number; step: number; tokens: number[]; text?: string } = {
    item,
    step,
    tokens,
  };
  if (decode) line.text = decode(tokens);
  return `${JSON.stringify(line)}\n`;
}
