/**
 * The contract of {@linkcode Config} as a zod schema: what any code that builds one must
 * satisfy. The tests hold every Config the command line builds to it (and the compiler
 * holds it to the Config type); the program does not load it. `buildConfig` checks each
 * flag where it reads it, with a message of its own, and a one-shot check that loaded
 * zod only for this would pay 9.5 MiB of its 72 MiB budget (README, Footprint).
 *
 * @module
 */

import { z } from "zod";
import {
  type Config,
  INT32_MAX,
  INT32_MIN,
  isHostPort,
  MAX_INTERVAL_SECONDS,
  OUTPUT_FORMATS,
} from "./config.ts";

/** Every valid {@linkcode Config}, and nothing else. */
export const ConfigSchema = z.object({
  input: z.string(),
  input6: z.string(),
  interval: z.number().int().min(1).max(MAX_INTERVAL_SECONDS),
  events: z.boolean(),
  ipv6: z.boolean(),
  checkMap: z.boolean(),
  mapPath: z.string(),
  verbosity: z.number().int().min(INT32_MIN).max(INT32_MAX),
  once: z.boolean(),
  dryRun: z.boolean(),
  rulesFile: z.string().min(1).optional(),
  rulesFile6: z.string().min(1).optional(),
  output: z.enum(OUTPUT_FORMATS),
  kubeconfig: z.string().min(1).optional(),
  nodeName: z.string().min(1).optional(),
  terminateOnSuccess: z.boolean(),
  installRoutesForHealthProbeReply: z.boolean(),
  metricsAddress: z.string().refine(isHostPort, "must be host:port").optional(),
  watch: z.boolean(),
  nftables: z.boolean(),
  skipHeaders: z.boolean(),
  addDirHeader: z.boolean(),
}).strict()
  .refine((c) => c.rulesFile6 === undefined || c.ipv6, "rulesFile6 needs ipv6")
  .refine((c) => c.dryRun || c.nodeName !== undefined, "nodeName is needed unless dryRun");

// Checked by the compiler: the schema describes exactly the Config type.
type Interchangeable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesConfig: Interchangeable<Config, z.infer<typeof ConfigSchema>> = true;
void schemaMatchesConfig;
