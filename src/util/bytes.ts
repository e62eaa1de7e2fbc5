/**
 * Bytes as text without Node's `Buffer`, so the readers that use them run in a browser too:
 * lowercase hex, and Latin-1 (each byte one code point, as `Buffer`'s `latin1`; a
 * `TextDecoder("latin1")` is windows-1252 and would differ on 0x80–0x9f).
 */

/** Code points converted per `String.fromCharCode` call: well below any engine's argument limit. */
const CHARS_PER_CALL = 8192;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex, two digits a byte, in order. */
export function bytesToHex(b: Uint8Array): string {
  let s = "";
  // Indexed, not `for … of`: run cold (a command's start-up), an iterator allocates per byte.
  for (let i = 0; i < b.length; i++) s += HEX[b[i] as number] as string;
  return s;
}

/** Each byte as the code point of its value. */
export function bytesToLatin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += CHARS_PER_CALL)
    s += String.fromCharCode(...b.subarray(i, i + CHARS_PER_CALL));
  return s;
}
