/**
 * What the browser tests share: the little of playwright-core's API they use (it is a
 * development dependency, loaded by name), Debian's Chromium, and the one rule for a missing
 * browser — a skip with the reason printed on a developer's machine, a failure under CI.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";

export const CHROMIUM = "/usr/bin/chromium";

export interface Locator {
  click(): Promise<void>;
  count(): Promise<number>;
  fill(text: string): Promise<void>;
  textContent(): Promise<string | null>;
  waitFor(opts?: { state?: string; timeout?: number }): Promise<void>;
  first(): Locator;
  nth(i: number): Locator;
  getAttribute(name: string): Promise<string | null>;
  selectOption(value: string): Promise<unknown>;
  setInputFiles(path: string): Promise<void>;
}
export interface Page {
  goto(url: string): Promise<unknown>;
  locator(selector: string, opts?: { hasText?: string }): Locator;
  getByTestId(id: string): Locator;
  screenshot(opts: { path: string; fullPage?: boolean }): Promise<unknown>;
  url(): string;
  on(event: "pageerror", f: (e: Error) => void): void;
  on(event: "console", f: (m: { type(): string; text(): string }) => void): void;
}
export interface Context {
  pages(): Page[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
export interface Playwright {
  chromium: {
    launchPersistentContext(dir: string, opts: Record<string, unknown>): Promise<Context>;
  };
}

/**
 * playwright-core, or undefined after skipping `t` (printing why) when it or Chromium is
 * missing; under CI (.ci/run installs both) a missing browser fails the test instead.
 */
export async function playwrightOrSkip(t: TestContext): Promise<Playwright | undefined> {
  const name = "playwright-core";
  const pw = (await import(name).catch(() => undefined)) as Playwright | undefined;
  const missing = !pw
    ? "playwright-core is not installed (npm install --no-save playwright-core)"
    : !existsSync(CHROMIUM)
      ? `${CHROMIUM} is missing (apt-get install chromium)`
      : undefined;
  if (!missing) return pw;
  if (process.env.CI) assert.fail(`CI must run the browser test: ${missing}`);
  console.log(`# browser test skipped: ${missing}`);
  t.skip(missing);
  return undefined;
}

/** Chromium's switches for a headless test on a machine with no network beyond loopback. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Chromium with a fresh profile in `profile` and its first page, whose page errors and console
 * errors are collected in `problems` (a test asserts them empty).
 */
export async function launchPage(
  pw: Playwright,
  profile: string,
): Promise<{ ctx: Context; page: Page; problems: string[] }> {
  const ctx = await pw.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: CHROMIUM_ARGS,
  });
  const problems: string[] = [];
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  return { ctx, page, problems };
}
