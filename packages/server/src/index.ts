export { CHANNEL_CODES, type ChannelCode } from './channels/channel-codes.js';
export { type Config, ConfigError, loadConfig } from './config/config.js';
export { AppError, type ErrorCode } from './errors.js';
export type { OrderView } from './orders/order.service.js';
export { createRuntime, type Runtime } from './runtime.js';
