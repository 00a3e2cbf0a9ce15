/**
 * The sandbox's expected failures (missing binaries, ports in use, existing
 * directories, start-up timeouts...) are errors of the product's catalogue
 * (src/errors.ts): `HarnessError` is `SwitchyardError` under the name the CLI and the
 * harness have always used, so one `instanceof` catches the engine's errors too.
 */
export { SwitchyardError as HarnessError } from '../errors.js';
