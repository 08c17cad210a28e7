'use strict';
// Helpers shared by the interop decoders: a deep comparison that reports every difference
// with its path, and a failure exit.

function describe(v) {
  if (typeof v === 'bigint') return v.toString() + 'n';
  return JSON.stringify(v);
}

function diff(actual, expected, path, out) {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) {
      out.push(`${path}: expected an array, got ${describe(actual)}`);
      return;
    }
    if (actual.length !== expected.length)
      out.push(`${path}: expected ${expected.length} elements, got ${actual.length}`);
    const n = Math.min(actual.length, expected.length);
    for (let i = 0; i < n; i++) diff(actual[i], expected[i], `${path}[${i}]`, out);
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      out.push(`${path}: expected an object, got ${describe(actual)}`);
      return;
    }
    for (const k of Object.keys(expected)) diff(actual[k], expected[k], `${path}.${k}`, out);
    for (const k of Object.keys(actual))
      if (!(k in expected)) out.push(`${path}.${k}: unexpected ${describe(actual[k])}`);
    return;
  }
  if (typeof expected === 'number' && Number.isNaN(expected)) {
    if (!(typeof actual === 'number' && Number.isNaN(actual)))
      out.push(`${path}: expected NaN, got ${describe(actual)}`);
    return;
  }
  if (actual !== expected)
    out.push(`${path}: expected ${describe(expected)}, got ${describe(actual)}`);
}

// Compares and exits non-zero, listing every mismatch, when anything differs.
function check(label, actual, expected) {
  const out = [];
  diff(actual, expected, label, out);
  if (out.length) {
    console.error(`${label}: ${out.length} mismatch(es)`);
    for (const line of out) console.error('  ' + line);
    process.exit(1);
  }
  console.log(`${label}: all fields match`);
}

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

module.exports = { check, fail };
