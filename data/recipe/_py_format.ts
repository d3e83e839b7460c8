/**
 * Python's `format(x, ".Nf")` for a float: the exact binary value rounded to N decimals with
 * ties to even. JavaScript's toFixed rounds exact ties up (2.675 is below its tie, so both
 * agree there, but 0.125 -> "0.13" in JavaScript and "0.12" in Python).
 */

export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const plain = x.toFixed(digits);
  if (Math.abs(x) >= 1e21) return plain;
  // toFixed(100) is exact for |x| < 1e21 down to 1e-100; enough to see an exact tie.
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf(".");
  const tail = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(tail)) return plain;
  // An exact tie: keep the even neighbour, which is the truncation when its last digit is even.
  const kept = exact.slice(0, digits === 0 ? dot : dot + 1 + digits);
  const last = Number(kept[kept.length - 1]);
  if (last % 2 === 1) return plain;
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  return sign + kept;
}
