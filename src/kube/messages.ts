import type { Family } from "../iptables/types.ts";
import { printable } from "../report/text.ts";

/** The API server rejects Event messages longer than this many bytes. */
export const EVENT_MESSAGE_LIMIT = 1024;

/** Upstream's Event reasons and messages, kept so that existing alerts keep matching. */
export const UNEXPECTED_REASON = "UnexpectedIPTablesRules";
export const UNEXPECTED_MESSAGE = "Node has unexpected iptables rules";
export const BLOCKED_REASON = "BlockedIPTablesRule";
export const BLOCKED_MESSAGE =
  "A process attempted to add iptables rules to the node but was blocked since last check. " +
  "iptables rules blocked because EBPF Host Routing is enabled: aka.ms/acnsperformance";
/** Ours: the node is clean again after an UnexpectedIPTablesRules warning. */
export const RESOLVED_REASON = "UnexpectedIPTablesRulesResolved";
export const RESOLVED_MESSAGE = "Node has no unexpected iptables rules any more";

/** One rule no allowlist pattern matched. */
export interface UnexpectedRule {
  family: Family;
  table: string;
  chain: string;
  /** The line as `iptables -S` prints it. */
  rule: string;
}

/** How many rules the message lists at most, before "and N more". */
const LISTED_RULES = 5;
/** Longest rule text shown; longer ones are cut with an ellipsis. */
const RULE_TEXT_LIMIT = 160;

const encoder = new TextEncoder();

function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** Cuts `text` to at most `limit` UTF-8 bytes without splitting a character. */
export function truncateBytes(text: string, limit: number): string {
  if (byteLength(text) <= limit) return text;
  const ellipsis = "…";
  const room = limit - byteLength(ellipsis);
  let result = "";
  let used = 0;
  for (const char of text) {
    const size = byteLength(char);
    if (used + size > room) break;
    result += char;
    used += size;
  }
  return result + ellipsis;
}

/** Longest attribution hint added to a message. */
const HINT_LIMIT = 200;

/**
 * The UnexpectedIPTablesRules message: upstream's sentence, how many rules are
 * unexpected, and the first few of them, within {@linkcode EVENT_MESSAGE_LIMIT} bytes.
 * A `hint` (`hint: last ruleset change seen from PID 19934 (iptables)`) ends it.
 */
export function unexpectedRulesMessage(
  rules: readonly UnexpectedRule[],
  hint?: string,
): string {
  if (hint === undefined) return listRules(rules, EVENT_MESSAGE_LIMIT);
  const suffix = ` (${truncateBytes(printable(hint), HINT_LIMIT)})`;
  return listRules(rules, EVENT_MESSAGE_LIMIT - byteLength(suffix)) + suffix;
}

function listRules(rules: readonly UnexpectedRule[], limit: number): string {
  if (rules.length === 0) return UNEXPECTED_MESSAGE;
  const count = rules.length === 1 ? "1 unexpected rule" : `${rules.length} unexpected rules`;
  let message = `${UNEXPECTED_MESSAGE}: ${count}`;
  let listed = 0;
  for (const rule of rules.slice(0, LISTED_RULES)) {
    const text = truncateBytes(printable(rule.rule), RULE_TEXT_LIMIT);
    const item = `${listed === 0 ? ": " : "; "}[${rule.family} ${rule.table}] ${text}`;
    const rest = rules.length - listed - 1;
    const tail = rest > 0 ? `; and ${rest} more` : "";
    if (byteLength(message + item + tail) > limit) break;
    message += item;
    listed++;
  }
  const more = rules.length - listed;
  if (more > 0) message += listed === 0 ? `; ${more} not shown` : `; and ${more} more`;
  return truncateBytes(message, limit);
}
