/**
 * The portal's one escaping helper. Pages are built with the `html` tag: every
 * interpolated value is escaped unless it is itself `SafeHtml` made by this tag (or an
 * array of them), so text from the store (machine names, script bodies, log lines) can
 * never become markup. Attribute values must be written in double quotes; the escaping
 * covers both text and quoted-attribute contexts. There is deliberately no "raw" escape
 * hatch.
 */

const brand: unique symbol = Symbol('SafeHtml');

export interface SafeHtml {
  readonly [brand]: true;
  readonly text: string;
}

function safe(text: string): SafeHtml {
  return Object.freeze({ [brand]: true as const, text });
}

export function isSafeHtml(value: unknown): value is SafeHtml {
  return typeof value === 'object' && value !== null && (value as Partial<SafeHtml>)[brand] === true;
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for HTML text and quoted attributes. null and undefined become ''. */
export function escapeHtml(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  return String(value).replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (Array.isArray(value)) return value.map(render).join('');
  if (isSafeHtml(value)) return value.text;
  return escapeHtml(value);
}

/** Tagged template: literal parts are trusted markup, every `${value}` is escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return safe(out);
}

/** The markup as a string, for sending. */
export function toHtml(value: SafeHtml): string {
  return value.text;
}
