import { readFileSync } from 'node:fs';

/** The package version, read once from the package.json that ships beside src/ and dist/. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** How paycenter names itself to the providers and to merchants' webhook endpoints. */
export const USER_AGENT = `paycenter/${VERSION}`;
