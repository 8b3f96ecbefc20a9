/**
 * A bare `deno` process: prints its own memory and nothing else, as the floor that the
 * daemon's resident set is compared with.
 *
 * @module
 */
import { memorySnapshot } from "./memory.ts";

if (import.meta.main) console.log(JSON.stringify({ mode: "bare", memory: memorySnapshot() }));
