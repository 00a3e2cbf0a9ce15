/** pino, with secrets redacted wherever they appear in a logged object. */
import { pino, type Logger } from 'pino';

export const REDACT = ['password', '*.password', 'adminToken', '*.adminToken', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization'];

export function createLogger(name: string, level = process.env.SWITCHYARD_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid } });
}
