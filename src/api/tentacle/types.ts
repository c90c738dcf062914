/** The contract's types, inferred from its schemas: one definition of each shape. */
import type { z } from 'zod';
import type * as S from './schemas.js';

export type ScriptSummary = z.output<typeof S.ScriptSummary>;
export type ScriptLogLine = z.output<typeof S.ScriptLogLine>;
export type ScriptStatus = z.output<typeof S.ScriptStatus>;
export type StartScriptArgs = z.output<typeof S.StartScriptArgs>;
export type UploadResult = z.output<typeof S.UploadResult>;
export type UpgradeStatus = z.output<typeof S.UpgradeStatus>;
