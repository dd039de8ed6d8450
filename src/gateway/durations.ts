// Gateway API durations (GEP-2257): one to four components, each one to five
// digits and a unit of h, m, s or ms, summed (`1h30m`, `1s500ms`, `10s30m1h`);
// units may repeat. `0` alone, floats, negatives and days are invalid.

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const COMPONENT = /([0-9]{1,5})(ms|h|m|s)/g;

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** A GEP-2257 duration in milliseconds, or undefined when it is not one. */
export function parseGatewayDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, digits, unit] of text.matchAll(COMPONENT)) {
    total += Number(digits) * (UNIT_MS[unit ?? ''] ?? 0);
  }
  return total;
}
