/**
 * Expected, user-facing failures of the sandbox harness (missing binaries,
 * ports in use, existing data directories, start-up timeouts...).
 *
 * The CLI prints `err.message` on one line without a stack trace when it
 * catches a HarnessError; anything else is treated as a bug.
 */
export class HarnessError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'HarnessError';
    this.code = code;
  }
}

/** True when `err` is a HarnessError (optionally with the given code). */
export function isHarnessError(err: unknown, code?: string): err is HarnessError {
  return err instanceof HarnessError && (code === undefined || err.code === code);
}
