// @ts-check
// Building the page: elements from a tag, attributes and children; boxes that fill in when
// their data arrives; the breadcrumbs of the header.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An attribute value; `text` sets the text content, `on…` a listener, and null, undefined or
 * false leave the attribute out.
 * @typedef {string | number | boolean | null | undefined | ((e: Event) => void)} AttrValue
 */
/** @typedef {Readonly<Record<string, AttrValue>>} Attrs */
/**
 * A child; null, undefined and false are left out, so conditions can sit inline.
 * @typedef {Node | string | null | undefined | false} Child
 */
/**
 * What a page or a section shows: one child or a list of them.
 * @typedef {Child | Child[]} Content
 */

/**
 * @param {Element} e
 * @param {Attrs | undefined} attrs
 * @param {readonly Child[]} children
 */
function fill(e, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) {
      if (typeof v === "function") e.addEventListener(k.slice(2), v);
    } else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
}

/**
 * An HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  fill(e, attrs, children);
  return e;
}

/**
 * An SVG element.
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  fill(e, attrs, children);
  return e;
}

/**
 * @param {Child} c
 * @returns {c is Node | string}
 */
const shown = (c) => Boolean(c);

/**
 * The nodes of some content, empty parts left out.
 * @param {Content} content
 * @returns {(Node | string)[]}
 */
export const nodes = (content) => (Array.isArray(content) ? content : [content]).filter(shown);

/**
 * The element of index.html with this id.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e;
}

/**
 * @param {unknown} e
 * @returns {HTMLParagraphElement}
 */
export const errorBox = (e) =>
  h("p", {
    class: "error",
    "data-testid": "error",
    text: e instanceof Error ? e.message : String(e),
  });

/**
 * A box that shows "loading…", then what `make` resolves to, or the error.
 * @param {string} testid
 * @param {() => Promise<Content>} make
 * @returns {HTMLDivElement}
 */
export function section(testid, make) {
  const box = h("div", { "data-testid": testid }, h("p", { class: "loading", text: "loading…" }));
  make()
    .then((content) => box.replaceChildren(...nodes(content)))
    .catch((e) => box.replaceChildren(errorBox(e)));
  return box;
}

/**
 * The header's breadcrumbs: labels, linked where an address is given.
 * @param {ReadonlyArray<readonly [string, string?]>} items
 */
export function setCrumbs(items) {
  /** @type {HTMLElement[]} */
  const out = [];
  items.forEach(([label, href], i) => {
    if (i) out.push(h("span", { class: "sep", text: "›" }));
    out.push(href ? h("a", { href, text: label }) : h("span", { text: label }));
  });
  byId("crumbs").replaceChildren(...out);
}
