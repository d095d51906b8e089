/** The part of a pino logger the notify workers use; the runtime passes its own. */
export interface NotifyLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: NotifyLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
