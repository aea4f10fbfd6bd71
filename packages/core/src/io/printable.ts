/**
 * Names that come from files (tensor keys, entry names) can be megabytes long or hold control
 * characters; printed whole they flood a terminal or a log, and a NUL byte truncates some log
 * pipelines. Every such name goes through {@link printable} before it reaches a message.
 */

/** Longest name shown in a message (longer ones are cut, with their length said). */
export const MAX_PRINTED_NAME = 120;

/**
 * `name` safe for one line of a message: control characters (NUL, newlines, escape sequences),
 * lone surrogates and U+2028/2029 escaped as `\xNN` / `\uNNNN`, and anything past `max`
 * characters cut with `… (N characters)`.
 */
export function printable(name: string, max = MAX_PRINTED_NAME): string {
  const cut = name.length > max;
  const shown = cut ? name.slice(0, max) : name;
  // eslint-disable-next-line no-control-regex
  const escaped = shown.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return cut ? `${escaped}… (${name.length} characters)` : escaped;
}
